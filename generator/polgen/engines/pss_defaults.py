"""The API-server defaults that run before Pod Security admission and change its verdict.

PSA never sees a manifest as written: defaulting has already happened. Only the defaults that
change a check's outcome are applied here; inputs are never mutated.
"""

from __future__ import annotations

import copy

from polgen.engines.pss_pod import Json, containers, dict_items, mapping

# Every volume source field of core/v1 Volume; a volume with none of them becomes emptyDir.
VOLUME_SOURCES = frozenset({
    "hostPath", "emptyDir", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "secret",
    "nfs", "iscsi", "glusterfs", "persistentVolumeClaim", "rbd", "flexVolume", "cinder", "cephfs",
    "flocker", "downwardAPI", "fc", "azureFile", "configMap", "vsphereVolume", "quobyte",
    "azureDisk", "photonPersistentDisk", "projected", "portworxVolume", "scaleIO", "storageos",
    "csi", "ephemeral", "image",
})


def with_volume_defaults(pod: Json) -> Json:
    """SetDefaults_Volume: a volume with no source is an emptyDir (pods and pod templates)."""
    volumes = mapping(pod.get("spec")).get("volumes")
    sourceless = [
        index for index, volume in enumerate(volumes if isinstance(volumes, list) else [])
        if isinstance(volume, dict)
        and not any(volume.get(source) is not None for source in VOLUME_SOURCES)
    ]
    if not sourceless:
        return pod
    result = copy.deepcopy(pod)
    for index in sourceless:
        result["spec"]["volumes"][index]["emptyDir"] = {}
    return result


def with_host_network_ports(pod: Json) -> Json:
    """defaultHostNetworkPorts: with hostNetwork, an unset hostPort becomes the containerPort.

    Since Kubernetes 1.28 this applies to Pods only, not to workload pod templates, so callers
    apply it to Pod objects alone (a Deployment warning may then differ from the Pod denial).
    """
    spec = mapping(pod.get("spec"))
    if spec.get("hostNetwork") is not True:
        return pod
    if not any(_defaultable(port) for c in containers(spec) for port in dict_items(c.get("ports"))):
        return pod
    result = copy.deepcopy(pod)
    for container in containers(result["spec"]):
        for port in dict_items(container.get("ports")):
            if _defaultable(port):
                port["hostPort"] = port["containerPort"]
    return result


def _defaultable(port: Json) -> bool:
    return port.get("hostPort") in (None, 0) and port.get("containerPort") not in (None, 0)
