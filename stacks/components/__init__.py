"""One construct per concern; ``stacks.harness_stack.HarnessStack`` composes them."""
