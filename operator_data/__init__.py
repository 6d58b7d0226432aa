"""The Operator Data hub: store, registry, workflows, SLA, helpdesk and the `pintar` CLI."""
