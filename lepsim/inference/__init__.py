"""Inference services: request streams (:mod:`.workload`) served by replicas on the shared cluster.

The request-level simulation itself lives in :mod:`lepsim.engine.services`.
"""
