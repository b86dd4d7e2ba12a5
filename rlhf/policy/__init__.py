"""Phase 1: the vision-language-action policy (backbone + action head) and behavioural cloning."""
