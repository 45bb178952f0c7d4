"""Receipts of captured payments: JSON and PDF (vi-VN amounts, Asia/Ho_Chi_Minh times)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from fpdf import FPDF

from services.payments.payments.models import Payment
from services.payments.payments.schemas import Receipt
from services.payments.payments.state import CAPTURED
from shared.errors import Conflict, ServiceUnavailable

VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
PURPOSE_LABELS = {
    "parking": "Phí gửi xe / Parking fee",
    "health": "Viện phí / Hospital fee",
    "tuition": "Học phí / School fee",
    "admin_fee": "Phí, lệ phí hành chính / Administrative fee",
}
# A Unicode TrueType font for Vietnamese diacritics and "₫" (Debian package fonts-dejavu-core).
FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/local/share/fonts/dejavu"))


def format_vnd(amount: int) -> str:
    """vi-VN: dot as thousands separator, the đồng sign after a space: 1.234.000 ₫."""
    sign = "-" if amount < 0 else ""
    return f"{sign}{abs(amount):,}".replace(",", ".") + " ₫"


def local_time(value: datetime) -> str:
    return value.astimezone(VN_TZ).strftime("%d/%m/%Y %H:%M:%S")


def build_receipt(payment: Payment) -> Receipt:
    if payment.status not in CAPTURED or payment.succeeded_at is None:
        raise Conflict(
            "A receipt exists only for a paid payment", code="receipt_not_available", payment_status=payment.status
        )
    return Receipt(
        payment_id=payment.id,
        status=payment.status,
        payer_sub=payment.payer_sub,
        purpose=payment.purpose,
        purpose_label=PURPOSE_LABELS.get(payment.purpose, payment.purpose),
        reference=payment.reference,
        description=payment.description,
        wallet=payment.wallet,
        amount_vnd=payment.amount_vnd,
        amount_refunded_vnd=payment.amount_refunded_vnd,
        amount_formatted=format_vnd(payment.amount_vnd),
        amount_refunded_formatted=format_vnd(payment.amount_refunded_vnd),
        paid_at=payment.succeeded_at,
        paid_at_local=local_time(payment.succeeded_at),
        provider_reference=payment.provider_intent_id or "",
        issued_by="Da Nang city payments / Cổng thanh toán thành phố Đà Nẵng",
    )


def unicode_font() -> tuple[Path, Path] | None:
    for folder in FONT_DIRS:
        regular, bold = folder / "DejaVuSans.ttf", folder / "DejaVuSans-Bold.ttf"
        if regular.is_file() and bold.is_file():
            return regular, bold
    return None


def render_pdf(receipt: Receipt) -> bytes:
    pdf = FPDF(format="A4")
    pdf.set_title(f"Receipt {receipt.payment_id}")
    pdf.set_creator("dncity payments")
    fonts = unicode_font()
    if fonts is None:
        # Without a Unicode font the core fonts cannot show Vietnamese; refuse rather than print "?".
        raise ServiceUnavailable(
            "PDF receipts are unavailable (no Unicode font installed); use JSON", code="receipt_pdf_unavailable"
        )
    pdf.add_font("DejaVu", "", str(fonts[0]))
    pdf.add_font("DejaVu", "B", str(fonts[1]))
    pdf.add_page()
    pdf.set_font("DejaVu", "B", 14)
    pdf.multi_cell(0, 8, "BIÊN LAI THANH TOÁN / PAYMENT RECEIPT", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "", 9)
    pdf.multi_cell(0, 5, receipt.issued_by, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    rows = [
        ("Mã thanh toán / Payment", receipt.payment_id),
        ("Người nộp / Payer", receipt.payer_sub),
        ("Khoản thu / Purpose", receipt.purpose_label),
        ("Mã tham chiếu / Reference", receipt.reference),
        ("Nội dung / Description", receipt.description),
        ("Số tiền / Amount", receipt.amount_formatted),
        ("Đã hoàn / Refunded", receipt.amount_refunded_formatted),
        ("Thời gian / Paid at", receipt.paid_at_local + " (giờ Việt Nam, UTC+7)"),
        ("Ví / Wallet", receipt.wallet),
        ("Mã nhà cung cấp / Provider ref.", receipt.provider_reference),
        ("Trạng thái / Status", receipt.status),
    ]
    for label, value in rows:
        pdf.set_font("DejaVu", "B", 9)
        pdf.cell(52, 6, label)
        pdf.set_font("DejaVu", "", 9)
        pdf.multi_cell(0, 6, value, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
