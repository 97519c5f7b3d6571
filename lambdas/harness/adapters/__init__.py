"""AWS adapters: the only modules of the domain that talk to AWS. Each is named for what it stores."""
