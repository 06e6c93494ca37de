"""polgen: one engine-neutral catalog of Kubernetes admission policies, rendered for every engine."""

__version__ = "0.1.0"
