"""Resources: each a small interface with a local twin (and, where the issue brings it, an AWS twin)."""
