//! The Kubernetes connector (feature `kubernetes`).
