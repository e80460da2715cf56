//! Workflows, guards, scripts, the pure evaluation of a transition and the Postgres executor around it.
