"""Scheduling: who runs next on the workers (fair queue), who may queue more (admission), and the policy
(principal classes, weights, caps, upload rates) both read from Settings."""
