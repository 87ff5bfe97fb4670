"""What every layer shares and nothing heavy: stage parameter defaults, error types, the types
stages hand each other. Importing it loads no model, store or parser."""
