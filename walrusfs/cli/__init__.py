"""Command-line tools: mkfs.walrusfs, mount.walrusfs, umount.walrusfs and walrusfs."""
