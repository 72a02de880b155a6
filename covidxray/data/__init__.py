"""From dataset folders in their native layouts to one manifest, verified, deduplicated and split."""
