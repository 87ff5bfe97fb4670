"""The whole prompt under one token budget; see :func:`assembler.prompt.pack.assemble_prompt`."""
