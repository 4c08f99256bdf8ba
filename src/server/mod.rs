//! Wiring: listeners, the proposer, dispatch, server commands.
