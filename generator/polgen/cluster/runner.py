"""`ClusterRunner`: the harness's cases through a real API server (kind, or a kubeconfig).

Per plan (one at a time, each from a clean slate): every target gets its own copies of the
cases' namespaces (`polgen.cluster.layout`); the base objects of UPDATE cases are created
before any policy; then each target's resources are applied and the run waits until they are
enforced; then every case goes to every target's copy (`polgen.cluster.submit`) and the answer
becomes the target's verdict (`polgen.cluster.responses`). A case or target that cannot be
evaluated is left out of the observations (the harness reports it as unexpected) and its reason
kept in `problems`. Everything the run created is deleted at the end.

Options besides the constructor's first four, all keyword-only:
`keep_cluster` (kind: keep a cluster this run created), `install_engines` (default: True for
kind, False for kubeconfig), `manifests` ({engine: URL or local file}) and `node_image`
(override versions.yaml, as do POLGEN_E2E_GATEKEEPER_MANIFEST, POLGEN_E2E_KYVERNO_MANIFEST,
POLGEN_E2E_NODE_IMAGE and POLGEN_E2E_KIND), `timeouts`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Literal

from polgen.cluster.apply import (
    Canaries,
    ClusterConflict,
    Ledger,
    ShareInstall,
    install_order,
    retire,
)
from polgen.cluster.install import (
    Timeouts,
    close_gatekeeper_webhook,
    gatekeeper_fails_closed,
    gatekeeper_webhook_pods,
)
from polgen.cluster.kind import Kind
from polgen.cluster.kube import Api, ApiError, KubeApi, NotServedError
from polgen.cluster.layout import TargetShare, namespace_body, plan_layout, policy_documents
from polgen.cluster.pins import Pins, load_pins
from polgen.cluster.readiness import NotReadyError, pod_running, wait_until
from polgen.cluster.responses import read_reply
from polgen.cluster.session import ApiFactory, Session, SessionOptions, open_session
from polgen.cluster.submit import Submission, Unsupported, send, submission_for
from polgen.harness import Case, Observation, result_of
from polgen.plan import ClusterPlan

Progress = Callable[[str], None]


class ClusterRunner:
    """Runs the harness's cases in a real cluster; see the module docstring."""

    def __init__(
        self,
        mode: Literal["kind", "kubeconfig"],
        kubeconfig: Path | None = None,
        context: str | None = None,
        progress: Progress = print,
        *,
        keep_cluster: bool = False,
        install_engines: bool | None = None,
        manifests: Mapping[str, str] | None = None,
        node_image: str | None = None,
        timeouts: Timeouts | None = None,
        pins: Pins | None = None,
        api_factory: ApiFactory = KubeApi,
        kind: Kind | None = None,
    ) -> None:
        self.name = mode
        self.progress = progress
        self.options = SessionOptions(
            mode=mode,
            kubeconfig=kubeconfig,
            context=context,
            pins=(pins or load_pins()).with_overrides(manifests, node_image),
            keep_cluster=keep_cluster,
            install=mode == "kind" if install_engines is None else install_engines,
            timeouts=timeouts or Timeouts(),
        )
        self.api_factory = api_factory
        self.kind = kind
        self.run_id = uuid.uuid4().hex[:10]
        self.problems: list[str] = []
        """Why cases or targets were left out, and what the cluster did unexpectedly."""

    def _problem(self, text: str) -> None:
        self.problems.append(text)
        self.progress(f"problem: {text}")

    def run(self, plans: Sequence[ClusterPlan], cases: Sequence[Case]) -> list[Observation]:
        """One observation per case x plan x target the cluster evaluated."""
        observations: list[Observation] = []
        with open_session(self.options, self.progress, self.api_factory, self.kind) as session:
            self.problems.extend(session.notes)
            ledger = Ledger(self.run_id, adopt_stale=session.adopt_stale)
            try:
                for index, plan in enumerate(plans, start=1):
                    observations.extend(self._run_plan(session, ledger, index, plan, cases))
                    retire(session.api, ledger, self.progress, self.options.timeouts.policies)
            finally:
                try:
                    retire(session.api, ledger, self.progress)
                except (ApiError, NotServedError) as exc:
                    # Reported, not raised: a failed cleanup must not hide the run's results.
                    self._problem(f"cleanup incomplete: {exc}")
        return observations

    def _run_plan(
        self,
        session: Session,
        ledger: Ledger,
        index: int,
        plan: ClusterPlan,
        cases: Sequence[Case],
    ) -> list[Observation]:
        api = session.api
        sources = sorted({c.request.namespace for c in cases if c.request.namespace})
        shares = []
        laid_out = plan_layout(plan, index, sources)
        for target in sorted(set(plan.targets) - {s.target for s in laid_out}):
            self._problem(f"{plan.name}/{target}: no admission engine for this target in a cluster")
        for share in laid_out:
            if share.target in session.unavailable:
                self._problem(f"{plan.name}/{share.target}: {session.unavailable[share.target]}")
            else:
                shares.append(share)
        self.progress(f"plan {plan.name}: {len(cases)} cases x {len(shares)} targets")
        submissions = {id(share): self._submissions(share, cases) for share in shares}
        for share in shares:
            for source in share.namespaces:
                body = namespace_body(share, source, self.run_id, pod_security=False)
                ledger.apply(api, body)
        bases = self._create_bases(api, [s for subs in submissions.values() for s in subs])
        ready = self._install(session, ledger, index, shares)
        sendable = [
            (share, submission)
            for share in ready
            for submission in submissions[id(share)]
            if submission.base is None or id(submission) in bases
        ]
        observations = []
        for done, (share, submission) in enumerate(sendable, start=1):
            observation = self._submit(api, plan, share, submission)
            result = "left out" if observation is None else result_of(observation.verdict)
            where = f"{plan.name}/{share.target}"
            self.progress(f"[{done}/{len(sendable)}] {where} {submission.case}: {result}")
            if observation is not None:
                observations.append(observation)
        return observations

    def _submissions(self, share: TargetShare, cases: Sequence[Case]) -> list[Submission]:
        found = []
        for case in cases:
            namespace = share.namespaces.get(case.request.namespace, "")
            try:
                found.append(submission_for(case.request, case.id, namespace))
            except Unsupported as exc:
                self._problem(f"{share.plan}/{share.target} {case.id}: {exc}")
        return found

    def _create_bases(self, api: Api, submissions: list[Submission]) -> set[int]:
        """Create the base objects for real (before any policy); wait for debug targets to run."""
        created: set[int] = set()
        for submission in submissions:
            if submission.base is None:
                continue
            try:
                api.create(submission.base)
            except (ApiError, NotServedError) as exc:
                self._problem(f"{submission.case}: base object not created: {exc}")
                continue
            created.add(id(submission))
        running = [s for s in submissions if id(s) in created and s.needs_running_base]

        def not_running() -> list[str]:
            missing = []
            for s in running:
                meta = s.body["metadata"]
                pod = api.get("v1", "Pod", meta["name"], meta["namespace"])
                problem = f"Pod {meta['name']}: not found" if pod is None else pod_running(pod)
                if problem:
                    missing.append(problem)
            return missing

        if running:
            try:
                timeout = self.options.timeouts.pods
                wait_until("debug target pods", not_running, self.progress, timeout)
            except NotReadyError as exc:
                # The API server accepts ephemeral containers on a pending pod just the same.
                self._problem(f"{exc}; sending the debug requests anyway")
        return created

    def _install(
        self, session: Session, ledger: Ledger, index: int, shares: list[TargetShare]
    ) -> list[TargetShare]:
        """Apply every target's resources, then wait for each; returns those that enforce."""
        api = session.api
        checks: list[tuple[TargetShare, Callable[[], list[str]]]] = []
        canaries = Canaries(api, ledger, index)
        for share in shares:
            try:
                checks.append((share, self._apply_share(session, ledger, share, canaries)))
            except (ApiError, ClusterConflict, NotServedError) as exc:
                self._problem(f"{share.plan}/{share.target}: not installed: {exc}")
        if any(share.target == "vap" for share, _ in checks):
            canaries.install()
        ready = []
        for share, check in checks:
            try:
                wait_until(
                    f"{share.plan}/{share.target} policies",
                    check,
                    self.progress,
                    self.options.timeouts.policies,
                )
            except (NotReadyError, ApiError, ClusterConflict) as exc:
                self._problem(f"{share.plan}/{share.target}: not enforcing: {exc}")
                continue
            ready.append(share)
        return ready

    def _apply_share(
        self, session: Session, ledger: Ledger, share: TargetShare, canaries: Canaries
    ) -> Callable[[], list[str]]:
        """Start installing one target; returns what it still misses (applying as it can)."""
        api = session.api
        pods = max(gatekeeper_webhook_pods(api), 1) if share.engine == "gatekeeper" else 0
        docs = install_order(policy_documents(share, self.run_id))
        install = ShareInstall(api, ledger, docs, pods)
        labels = {}
        for source, name in share.namespaces.items():
            body = namespace_body(share, source, self.run_id, pod_security=True)
            ledger.apply(api, body)
            labels[name] = body["metadata"]["labels"]
        install.missing()
        # The run closed Gatekeeper's webhook itself: check it stays closed.
        fail_closed = share.engine == "gatekeeper" and self.options.install

        def missing() -> list[str]:
            problems = install.missing()
            if fail_closed and (problem := gatekeeper_fails_closed(api)):
                # Something reverted the run's patch: close it again and look once more.
                close_gatekeeper_webhook(api)
                problems.append(problem)
            if share.engine == "vap":
                problems.extend(canaries.vap_missing(next(iter(share.namespaces.values()))))
            if share.engine == "psa":
                for name, namespace_labels in labels.items():
                    problems.extend(canaries.psa_missing(name, namespace_labels))
            return problems

        return missing

    def _submit(
        self, api: Api, plan: ClusterPlan, share: TargetShare, submission: Submission
    ) -> Observation | None:
        try:
            reply = send(api, submission)
        except (ApiError, NotServedError) as exc:
            self._problem(f"{plan.name}/{share.target} {submission.case}: not sent: {exc}")
            return None
        reading = read_reply(share.engine, share.owned, reply)
        if reading.verdict is None:
            self._problem(f"{plan.name}/{share.target} {submission.case}: {reading.problem}")
            return None
        return Observation(submission.case, plan.name, share.target, reading.verdict)
