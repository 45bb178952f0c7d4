"""The sign-in and consent pages' words, in Vietnamese and English."""

from __future__ import annotations

LANGUAGES = ("vi", "en")

TEXT: dict[str, dict[str, str]] = {
    "vi": {
        "title_signin": "Đăng nhập Da Nang ID",
        "signin_for": "để tiếp tục tới",
        "login_label": "Số điện thoại hoặc số định danh cá nhân",
        "password_label": "Mật khẩu",
        "signin_button": "Đăng nhập",
        "title_totp": "Xác thực hai bước",
        "totp_label": "Mã 6 số từ ứng dụng xác thực (hoặc mã khôi phục)",
        "totp_button": "Xác nhận",
        "title_consent": "Cho phép truy cập",
        "consent_intro": "muốn được:",
        "consent_signed_in_as": "Bạn đang đăng nhập với tài khoản",
        "allow": "Cho phép",
        "deny": "Từ chối",
        "consent_note": "Bạn có thể thu hồi quyền này bất cứ lúc nào trong phần cài đặt tài khoản.",
        "title_error": "Không thể tiếp tục",
        "error_back": "Hãy quay lại ứng dụng và thử lại.",
        "err_invalid_credentials": "Thông tin đăng nhập hoặc mật khẩu không đúng.",
        "err_account_locked": "Tài khoản tạm thời bị khóa do nhập sai nhiều lần. Vui lòng thử lại sau.",
        "err_account_not_active": "Tài khoản này không thể đăng nhập.",
        "err_totp": "Mã xác thực không đúng.",
        "err_csrf": "Phiên làm việc đã hết hạn. Vui lòng thử lại.",
        "err_expired": "Yêu cầu đăng nhập đã hết hạn. Hãy quay lại ứng dụng và thử lại.",
        "err_missing": "Vui lòng nhập đủ thông tin.",
        "title_signout": "Đăng xuất Da Nang ID",
        "signout_question": "Bạn có muốn đăng xuất Da Nang ID trên trình duyệt này không?",
        "signout_button": "Đăng xuất",
        "title_signed_out": "Đã đăng xuất",
        "signed_out_note": "Bạn đã đăng xuất Da Nang ID trên trình duyệt này.",
        "err_logout": "Yêu cầu đăng xuất không hợp lệ",
        "language_other": "English",
    },
    "en": {
        "title_signin": "Sign in with Da Nang ID",
        "signin_for": "to continue to",
        "login_label": "Phone number or personal ID number",
        "password_label": "Password",
        "signin_button": "Sign in",
        "title_totp": "Two-step verification",
        "totp_label": "6-digit code from your authenticator app (or a recovery code)",
        "totp_button": "Verify",
        "title_consent": "Allow access",
        "consent_intro": "would like to:",
        "consent_signed_in_as": "You are signed in as",
        "allow": "Allow",
        "deny": "Deny",
        "consent_note": "You can withdraw this permission at any time in your account settings.",
        "title_error": "Cannot continue",
        "error_back": "Go back to the app and try again.",
        "err_invalid_credentials": "The login or password is wrong.",
        "err_account_locked": "Too many failed attempts: the account is locked for a while. Try again later.",
        "err_account_not_active": "This account cannot sign in.",
        "err_totp": "The verification code is wrong.",
        "err_csrf": "Your session expired. Please try again.",
        "err_expired": "The sign-in request expired. Go back to the app and try again.",
        "err_missing": "Please fill in every field.",
        "title_signout": "Sign out of Da Nang ID",
        "signout_question": "Do you want to sign out of Da Nang ID in this browser?",
        "signout_button": "Sign out",
        "title_signed_out": "Signed out",
        "signed_out_note": "You have signed out of Da Nang ID in this browser.",
        "err_logout": "The sign-out request is not valid",
        "language_other": "Tiếng Việt",
    },
}


def choose_language(ui_locales: str | None, accept_language: str | None) -> str:
    """ui_locales (OIDC Core §3.1.2.1) first, then Accept-Language by quality; Vietnamese by default."""
    for tag in (ui_locales or "").split():
        primary = tag.split("-")[0].lower()
        if primary in LANGUAGES:
            return primary
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate((accept_language or "").split(",")):
        pieces = part.strip().split(";")
        primary = pieces[0].split("-")[0].strip().lower()
        quality = 1.0
        for piece in pieces[1:]:
            name, _, value = piece.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if primary in LANGUAGES and quality > 0:
            ranked.append((-quality, index, primary))
    return sorted(ranked)[0][2] if ranked else "vi"
