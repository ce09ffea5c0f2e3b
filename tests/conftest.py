"""Settings shared by the unit and end-to-end tests."""

import os

# Modules compiled without an explicit --kernel-link get the plugin form in the test suite: most
# tests prove that a kernel ran with the plugin's debug counters, which the embedded object
# (the default for users) cannot have. The embedded form has its own tests, which ask for it.
os.environ.setdefault("MIPSC_KERNEL_LINK", "plugin")
