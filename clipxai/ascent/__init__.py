"""The method: from a config to a finished run.

``config`` (options and presets) -> ``run`` (build the parts, attach the callbacks, ascend or
resume) -> ``engine`` (the loop only); beside them ``augment``, ``schedule``, ``compute``
(precision, compilation), ``budget`` (memory), ``expand`` (LLM prompts) and the callbacks
``recorder``, ``progress`` and ``notebook``.
"""
