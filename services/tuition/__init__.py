"""School fees: students, guardians, invoices, exemptions and cashless payment."""
