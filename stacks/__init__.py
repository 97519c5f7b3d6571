"""The CDK app: the single definition of the harness's AWS resources.

The stack reads the API contract from the domain package ``harness``, which lives in
``lambdas/`` (it is deployed as the functions' code); importing ``stacks`` makes it importable.
"""

import sys
from pathlib import Path

_LAMBDAS = str(Path(__file__).resolve().parents[1] / "lambdas")
if _LAMBDAS not in sys.path:
    sys.path.insert(0, _LAMBDAS)
