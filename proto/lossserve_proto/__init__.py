"""lossserve's wire, shared by the server (``lossserve``) and the Python client
(``lossserve_client``), so that neither depends on the other.

Generated code, never edited by hand (``make generate`` writes it from ``proto/``):
:mod:`lossserve_proto.lossserve.v1` (``LossService``: messages, gRPC stubs, type stubs) and
:mod:`lossserve_proto.inference` (the Open Inference Protocol's ``GRPCInferenceService``).
Written by hand: :mod:`lossserve_proto.tensors` (tensors on the wire, numpy in and out) and
:mod:`lossserve_proto.chunks` (the framing of ``ComputeLossChunked``).
"""
