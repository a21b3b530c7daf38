"""``triton_decisions.py`` runs in an interpreter of its own (tritonclient.grpc's protobuf
package ``inference`` cannot share one with lossserve's), so pytest never imports it."""

collect_ignore = ["triton_decisions.py"]
