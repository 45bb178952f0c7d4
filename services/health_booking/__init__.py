"""Medical appointments: facilities, schedules, slots, bookings and visit records."""
