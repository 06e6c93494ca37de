"""polgen: one engine-neutral catalog of Kubernetes admission policies, for every engine."""

__version__ = "0.1.0"
