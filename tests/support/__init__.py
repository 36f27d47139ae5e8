"""What tests share: object builders, test PKI, the Kubernetes fake (no tests here)."""
