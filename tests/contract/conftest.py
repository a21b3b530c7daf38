"""``tritonclient_cases.py`` is collected only in the interpreter ``test_tritonclient.py``
starts for it (``LOSSSERVE_TRITON_CASES=1``).

tritonclient.grpc's generated ``service_pb2`` and lossserve's ``grpc_service_pb2`` both define
the protobuf package ``inference``; a process that imported one cannot import the other (the
descriptor pool refuses the duplicate symbols), and the rest of the suite imports ours.
"""

from __future__ import annotations

import os

collect_ignore = (
    [] if os.environ.get("LOSSSERVE_TRITON_CASES") == "1" else ["tritonclient_cases.py"]
)
