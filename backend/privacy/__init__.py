"""Data-subject rights: one requester's identifiers, erasure and right-of-access exports."""
