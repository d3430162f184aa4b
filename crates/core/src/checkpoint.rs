//! Checkpoints (C2SP tlog-checkpoint) signed as notes (C2SP signed-note), and receipts.
