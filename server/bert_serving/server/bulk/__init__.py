"""Bulk encoding of a corpus on Ray Data: ``bert-serving-encode`` (needs ``bert-serving-server[bulk]``).

``inputs`` finds and reads the files, ``parts`` writes and checks the output, ``manifest`` records the
run, ``actor`` is the encoder actor, ``job`` runs the pipeline.
"""
