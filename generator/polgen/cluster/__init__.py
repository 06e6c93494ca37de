"""Run polgen's rendered policies and the harness's cases in a real cluster (kind or a
kubeconfig): `polgen.cluster.runner.ClusterRunner`. Needs the `kind` extra (kubernetes client);
nothing here is imported by the rest of polgen."""
