"""The web pages' texts, Bahasa Indonesia first, English as the alternative."""

from __future__ import annotations

from collections.abc import Mapping

LANGUAGES = ("id", "en")
DEFAULT_LANGUAGE = "id"

# key -> (Bahasa Indonesia, English)
_TEXTS: dict[str, tuple[str, str]] = {
    "app_title": ("Helpdesk Listrik Pintar", "Listrik Pintar helpdesk"),
    "login": ("Masuk", "Log in"),
    "logout": ("Keluar", "Log out"),
    "username": ("Nama pengguna", "Username"),
    "password": ("Kata sandi", "Password"),
    "login_failed": ("Nama pengguna atau kata sandi salah.", "Wrong username or password."),
    "search": ("Cari", "Search"),
    "search_hint": (
        "No. meter (11 digit), ID pelanggan (12 digit), no. HP atau ID transaksi",
        "Meter number (11 digits), customer ID (12 digits), phone number or transaction ID",
    ),
    "not_recognised": (
        "Masukan tidak dikenali sebagai no. meter, ID pelanggan, no. HP atau transaksi.",
        "Not recognised as a meter number, customer ID, phone number or transaction.",
    ),
    "home": ("Beranda", "Home"),
    "messages": ("Log SMS", "Message log"),
    "sla": ("SLA", "SLA"),
    "alarms": ("Alarm", "Alarms"),
    "status": ("Status gateway", "Gateway status"),
    "users": ("Pengguna", "Users"),
    "meter": ("Meter", "Meter"),
    "customer": ("Pelanggan", "Customer"),
    "transaction": ("Transaksi", "Transaction"),
    "timeline": ("Linimasa", "Timeline"),
    "time_wib": ("Waktu (WIB)", "Time (WIB)"),
    "kind": ("Jenis", "Kind"),
    "state": ("Status", "State"),
    "flow": ("Alur", "Flow"),
    "direction": ("Arah", "Direction"),
    "detail": ("Rincian", "Detail"),
    "peer": ("No. HP", "Phone"),
    "token": ("Token", "Token"),
    "amount": ("Nominal", "Amount"),
    "stage": ("Tahap", "Stage"),
    "target": ("Target", "Target"),
    "met": ("Terpenuhi", "Met"),
    "breach": ("Terlampaui", "Breached"),
    "pending": ("Menunggu", "Pending"),
    "stopped_at": ("Berhenti di tahap", "Stopped at stage"),
    "completed": ("Selesai", "Completed"),
    "open_for": ("berjalan", "open for"),
    "next_expected": ("Tahap berikutnya", "Next expected"),
    "no_data": ("Tidak ada data.", "No data."),
    "newest": ("Terbaru", "Newest"),
    "older": ("Lebih lama", "Older"),
    "today": ("Hari ini", "Today"),
    "this_month": ("Bulan ini", "This month"),
    "breaches": ("Pelanggaran SLA", "SLA breaches"),
    "sla_targets_note": (
        "Target dari pengaturan [sla] server ini; angka dihitung seperti `pintar sla report`.",
        "Targets from this server's [sla] settings; figures computed as `pintar sla report`.",
    ),
    "sms_volume": ("Volume SMS per hari", "SMS volume per day"),
    "sla_over_time": ("SLA terpenuhi per hari (%)", "SLA met per day (%)"),
    "acknowledge": ("Konfirmasi", "Acknowledge"),
    "acknowledged": ("Dikonfirmasi", "Acknowledged"),
    "severity": ("Tingkat", "Severity"),
    "code": ("Kode", "Code"),
    "reason": ("Alasan", "Reason"),
    "reason_required": (
        "Alasan wajib diisi untuk melihat data pelanggan.",
        "A reason is required to view customer data.",
    ),
    "view": ("Lihat", "View"),
    "resend_token": ("Kirim ulang token", "Resend token"),
    "gateways": ("Gateway dan modem", "Gateways and modems"),
    "ap2t_batches": ("Riwayat batch AP2T", "AP2T batch history"),
    "connected": ("Terhubung", "Connected"),
    "disconnected": ("Terputus", "Disconnected"),
    "signal": ("Sinyal", "Signal"),
    "queue": ("Antrean", "Queue"),
    "outbox_pending": ("SMS menunggu di outbox", "SMS pending in the outbox"),
    "name": ("Nama", "Name"),
    "tariff": ("Tarif/Daya", "Tariff/Power"),
    "meters": ("Meter", "Meters"),
    "phones": ("No. HP terdaftar", "Registered phones"),
    "role": ("Peran", "Role"),
    "active": ("Aktif", "Active"),
    "language": ("Bahasa", "Language"),
    "metric": ("Metrik", "Metric"),
    "count": ("Jumlah", "Count"),
    "records": ("Rekaman", "Records"),
    "day": ("Tanggal", "Day"),
    "done": ("Berhasil", "Done"),
    "done_resent": (
        "Token dikirim ulang ke meter.",
        "The token was queued again for the meter.",
    ),
    "done_unavailable": (
        "Kirim ulang tidak tersedia: alur pengiriman hub tidak berjalan.",
        "Resend unavailable: the hub's delivery workflow is not running.",
    ),
    "forbidden": ("Akses ditolak untuk peran Anda.", "Your role may not do this."),
    "not_found": ("Tidak ditemukan.", "Not found."),
    "filter": ("Saring", "Filter"),
    "from": ("Dari", "From"),
    "until": ("Sampai", "Until"),
    "any": ("(semua)", "(any)"),
    # users page and own password
    "created": ("Dibuat", "Created"),
    "locked_until": ("Terkunci sampai (WIB)", "Locked until (WIB)"),
    "yes": ("Ya", "Yes"),
    "no": ("Tidak", "No"),
    "actions": ("Tindakan", "Actions"),
    "create_user": ("Tambah pengguna", "Create user"),
    "initial_password": ("Kata sandi awal", "Initial password"),
    "deactivate": ("Nonaktifkan", "Deactivate"),
    "unlock": ("Buka kunci", "Unlock"),
    "reset_password": ("Atur ulang kata sandi", "Reset password"),
    "new_password": ("Kata sandi baru", "New password"),
    "repeat_password": ("Ulangi kata sandi baru", "New password again"),
    "current_password": ("Kata sandi saat ini", "Current password"),
    "change_password": ("Ganti kata sandi", "Change password"),
    "password_rule": (
        "Kata sandi harus 10-256 karakter.",
        "The password must be 10-256 characters long.",
    ),
    "passwords_differ": (
        "Kedua kata sandi baru tidak sama.",
        "The two new passwords are not the same.",
    ),
    "wrong_current_password": ("Kata sandi saat ini salah.", "The current password is wrong."),
    "too_many_attempts": (
        "Terlalu banyak percobaan yang gagal. Silakan coba lagi nanti.",
        "Too many failed attempts. Please try again later.",
    ),
    "password_changed": (
        "Kata sandi telah diganti. Sesi lain akun ini telah ditutup.",
        "Your password has been changed. Your other sessions have been closed.",
    ),
    "reset_closes_sessions": (
        "Mengatur ulang kata sandi menutup semua sesi pengguna itu dan membuka kuncinya.",
        "A reset closes all of that user's sessions and lifts a login lock-out.",
    ),
    "user_created": ("Pengguna dibuat", "User created"),
    "user_deactivated": ("Pengguna dinonaktifkan", "User deactivated"),
    "user_unlocked": ("Kunci dibuka", "Unlocked"),
    "password_was_reset": ("Kata sandi diatur ulang", "Password reset"),
    "activate": ("Aktifkan", "Activate"),
    "change_role": ("Ubah peran", "Change role"),
    "api_keys": ("Kunci API", "API keys"),
    "key_id": ("ID kunci", "Key ID"),
    "label": ("Label", "Label"),
    "revoked": ("Dicabut (WIB)", "Revoked (WIB)"),
    "revoke": ("Cabut", "Revoke"),
    "user_activated": ("Pengguna diaktifkan", "User activated"),
    "role_changed": ("Peran diubah", "Role changed"),
    "api_key_revoked": ("Kunci API dicabut", "API key revoked"),
    "issue_api_key": ("Buat kunci API", "Issue API key"),
    "api_key_issued": ("Kunci API dibuat", "API key issued"),
    "copy_key_now": (
        "Salin sekarang; kunci ini tidak dapat ditampilkan lagi.",
        "Copy it now; it cannot be shown again.",
    ),
    "label_rule": ("Label harus 1-100 karakter.", "The label must be 1-100 characters long."),
    "user_inactive_no_key": (
        "Pengguna ini nonaktif: aktifkan terlebih dahulu untuk membuat kunci API.",
        "This user is deactivated: activate them first to issue an API key.",
    ),
    "activate_restores_keys": (
        "Mengaktifkan kembali pengguna juga memulihkan kunci API-nya yang belum dicabut.",
        "Reactivating a user also brings back their API keys that were not revoked.",
    ),
    "own_account_refused": (
        "Anda tidak dapat menonaktifkan akun sendiri atau melepas peran admin Anda sendiri.",
        "You cannot deactivate your own account or take the admin role from it.",
    ),
    "last_admin_refused": (
        "Ini admin aktif terakhir: jadikan pengguna lain admin terlebih dahulu.",
        "This is the last active admin: make another user admin first.",
    ),
}

# The error page's heading per HTTP status; the technical detail stays below it.
_ERRORS: dict[str, tuple[str, str]] = {
    "error_400": ("Permintaan tidak sah.", "The request is not valid."),
    "error_401": ("Silakan masuk terlebih dahulu.", "Please log in first."),
    "error_403": ("Akses ditolak untuk peran Anda.", "Your role may not do this."),
    "error_404": ("Tidak ditemukan.", "Not found."),
    "error_405": (
        "Cara akses ini tidak diizinkan untuk alamat ini.",
        "This address does not accept this kind of request.",
    ),
    "error_409": (
        "Tidak dapat dilakukan pada keadaan saat ini.",
        "Not possible in the current state.",
    ),
    "error_422": ("Masukan tidak sah.", "The input is not valid."),
    "error_503": ("Layanan ini tidak tersedia di sini.", "This service is not available here."),
    "error_detail": ("Rincian teknis", "Technical detail"),
}

CATALOGUE: Mapping[str, Mapping[str, str]] = {
    lang: {key: pair[index] for key, pair in {**_TEXTS, **_ERRORS}.items()}
    for index, lang in enumerate(LANGUAGES)
}


def pick_language(requested: str | None) -> str:
    return requested if requested in LANGUAGES else DEFAULT_LANGUAGE


def texts(language: str) -> Mapping[str, str]:
    return CATALOGUE[pick_language(language)]
