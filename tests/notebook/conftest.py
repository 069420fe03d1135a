"""Kernel fixtures for the extension's tests (defined in kernel_harness)."""

from kernel_harness import kernel, kernel_spec_dir

__all__ = ["kernel", "kernel_spec_dir"]
