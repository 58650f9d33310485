"""The llm-hosting CrossGuard policy pack (run with `pulumi preview --policy-pack policies`)."""
