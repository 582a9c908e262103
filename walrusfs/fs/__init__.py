"""pyfuse3 Operations on trio: inodes, handles, permissions and kernel cache hints. Errors become errno here and nowhere else."""
