"""HeaderCache: decoded binary-extension headers kept only when the header decides it all."""

from __future__ import annotations

import json

import numpy as np

from lossserve.api.oip_rest import HeaderCache, decode_infer_request


def _binary(*tensors: np.ndarray, data: list[float] | None = None) -> tuple[bytes, int, dict]:
    entries = [
        {
            "name": f"x{index}",
            "shape": list(t.shape),
            "datatype": "FP32",
            "parameters": {"binary_data_size": t.nbytes},
        }
        for index, t in enumerate(tensors)
    ]
    if data is not None:
        entries.append({"name": "inline", "shape": [len(data)], "datatype": "FP32", "data": data})
    document = {"inputs": entries, "outputs": [{"name": "logits"}]}
    header = json.dumps(document).encode()
    return header + b"".join(t.tobytes() for t in tensors), len(header), document


def _decoded(body: bytes, split: int, document: dict) -> tuple:
    binary = memoryview(body)[split:]
    return decode_infer_request(document, binary, model="m", version="", max_elements=10**6)


def test_a_kept_header_gives_each_body_its_own_tensors() -> None:
    cache = HeaderCache()
    a, b = np.arange(6, dtype=np.float32).reshape(2, 3), np.ones((2, 2), np.float32)
    body, split, document = _binary(a, b)
    assert cache.get(body, str(split), "m", "") is None
    cache.put(body, document, split, _decoded(body, split, document))
    other_a, other_b = a + 10, b * 5
    other, _, _ = _binary(other_a, other_b)
    found = cache.get(other, str(split), "m", "")
    assert found is not None
    request, _ = found
    np.testing.assert_array_equal(request.inputs["x0"], other_a)
    np.testing.assert_array_equal(request.inputs["x1"], other_b)
    assert request.inputs["x0"].flags.writeable
    assert [o.name for o in request.outputs] == ["logits"]
    # same header, another model, version or body length: not this entry
    assert cache.get(other, str(split), "n", "") is None
    assert cache.get(other, str(split), "m", "1") is None
    assert cache.get(other[:-4], str(split), "m", "") is None
    assert cache.get(other, f" {split}", "m", "") is None


def test_a_header_with_inline_data_is_not_kept() -> None:
    cache = HeaderCache()
    body, split, document = _binary(np.ones((1, 2), np.float32), data=[1.0, 2.0])
    cache.put(body, document, split, _decoded(body, split, document))
    assert cache.get(body, str(split), "m", "") is None


def test_the_cache_is_bounded() -> None:
    cache = HeaderCache(size=4)
    kept = []
    for rows in range(1, 7):
        body, split, document = _binary(np.zeros((rows, 2), np.float32))
        cache.put(body, document, split, _decoded(body, split, document))
        kept.append((body, split))
    found = [cache.get(body, str(split), "m", "") is not None for body, split in kept]
    assert found == [False, False, False, False, True, True]
