"""Write docs/configuration.md from the config loader's key table:  python docs/make_configuration.py"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "WorldModels"))

from common.config import configuration_reference  # noqa: E402  (after the path is set)

if __name__ == "__main__":
    path = ROOT / "docs" / "configuration.md"
    path.write_text(configuration_reference())
    print(f"wrote {path}")
