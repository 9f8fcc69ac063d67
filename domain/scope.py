"""Who may see and change which customers: staff their own, managers their department."""

from __future__ import annotations

from dataclasses import dataclass

from domain.shared import Forbidden

ROLES = ("admin", "manager", "staff", "auditor", "regulator")
WRITE_ROLES = ("admin", "manager", "staff")


@dataclass(frozen=True)
class Scope:
    role: str
    staff_id: str | None = None
    department: str | None = None  # set for managers only
    subject: str | None = None  # who holds the token, for the record

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown role {self.role!r}")
        if self.role == "staff" and not self.staff_id:
            raise ValueError("a staff scope needs a staff id")
        if self.role == "manager" and not self.department:
            raise ValueError("a manager scope needs a department")
        if self.role != "manager" and self.department is not None:
            object.__setattr__(self, "department", None)

    @property
    def actor(self) -> str:
        """Who the events say acted: a staff member, or the named holder of a token."""
        if self.staff_id:
            return f"staff:{self.staff_id}"
        return f"user:{self.subject or self.role}"

    def can_write(self) -> bool:
        return self.role in WRITE_ROLES

    def can_see_clear_personal_data(self, owner: str | None) -> bool:
        """Admins, and the staff member who serves the customer, see phones in clear."""
        return self.role == "admin" or (self.role == "staff" and owner == self.staff_id)

    def check_customer(self, owner: str | None, owner_department: str | None) -> None:
        if self.role == "staff" and owner != self.staff_id:
            raise Forbidden("staff can only act on their own customers")
        if self.role == "manager" and owner_department != self.department:
            raise Forbidden("managers can only act on customers of their own department")
        if self.role == "regulator":
            raise Forbidden("regulators receive exports only")
