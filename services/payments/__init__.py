"""City fees paid by mobile money: payments, refunds, receipts, ledger and reconciliation."""
