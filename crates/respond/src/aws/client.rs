//! The AWS connector (feature `aws`).
