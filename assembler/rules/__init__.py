"""The policy's rules, one module each, in the order the assembler applies them."""
