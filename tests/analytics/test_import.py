"""The analytics package is pure: importing it must not load Django."""

from __future__ import annotations

import subprocess
import sys


def test_it_imports_without_loading_django() -> None:
    code = (
        "import sys; import monitoring.analytics, monitoring.analytics.simulate, "
        "monitoring.analytics.reference, monitoring.analytics.study, monitoring.analytics.__main__; "
        "loaded = sorted(m for m in sys.modules if m == 'django' or m.startswith('django.')); "
        "print(','.join(loaded))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": "."},
    )
    assert result.stdout.strip() == ""
