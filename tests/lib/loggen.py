# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The one log generator of sre.cmemgzip's tests, fleet harness and benchmark.

Deterministic, seeded, realistic log text:

  access  Apache "combined" access log
  error   Apache/application error log with Python tracebacks
  syslog  RFC 3164-style syslog of one host (sshd, CRON, systemd, kernel,
          postfix, sudo, dhclient, systemd-logind, chronyd, rsyslogd)
  jsonl   structured application log, one JSON object per line

``log_bytes(size, seed, kind)`` returns the text, ``write_log(path, size,
seed, kind)`` streams it into a file; both give exactly ``size`` bytes ending
with a newline, and the same kind, seed and size give the same bytes (tests
compare sha256 computed at creation).  The seed may be an int or a str.

Speed: each kind has a vocabulary (a pool of varied, pre-rendered line
fragments) built once per process from a fixed seed; the stream's own seed
then assembles lines chunk by chunk from that pool with random.choices
(weighted, Zipf-like), with timestamps that only ever increase.  The pool is
far bigger than deflate's 32 KiB window, so the compression ratio looks like
a real log's (access about 9x at gzip -9, syslog about 6x), not like a
repeated text's.

Command line (prints the sha256)::

    python3 tests/lib/loggen.py --kind access --size 256M --seed 1 --out FILE

Python standard library only.
"""

import argparse
import functools
import hashlib
import itertools
import json
import math
import os
import random
import sys
import time

START_EPOCH = 1709251200  # 2024-03-01 00:00:00 UTC
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun",
          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
CHUNK_CHARS = 4 << 20


def parse_size(text):
    """'256M' -> 268435456.  K/M/G/T are binary (KiB, MiB, ...)."""
    t = str(text).strip().upper()
    for suffix in ("IB", "B"):
        if t.endswith(suffix) and len(t) > len(suffix) and t[-len(suffix) - 1] in "KMGT":
            t = t[:-len(suffix)]
    mult = 1
    if t and t[-1] in "KMGT":
        mult = 1 << (10 * ("KMGT".index(t[-1]) + 1))
        t = t[:-1]
    value = float(t)
    if value <= 0:
        raise ValueError("size must be positive")
    return int(value * mult)


def zipf_cum(n, s=1.1):
    """Cumulative Zipf weights for ranks 1..n (for random.choices)."""
    return list(itertools.accumulate(1.0 / (r ** s) for r in range(1, n + 1)))


def rand_hex(rng, n):
    return "%0*x" % (n, rng.getrandbits(4 * n))


# --------------------------------------------------------------------------
# shared vocabulary
# --------------------------------------------------------------------------

WORDS = (
    "alpha bravo cable delta echo falcon garden harbor island jungle kernel "
    "lemon matrix nebula orbit pixel quartz river sierra tango ultra vector "
    "willow xenon yellow zebra amber basil cedar dune ember fjord glacier "
    "hazel indigo jasper koala lotus maple nectar olive pepper quill raven "
    "saffron timber umber violet walnut yarrow zinnia anchor beacon canyon "
    "desert forest granite horizon iceberg lagoon meadow oasis prairie reef "
    "summit tundra valley wave blue red green black white small large pro "
    "mini max ultra lite classic modern vintage organic premium basic"
).split()

USER_NAMES = ("alice bob carol dave erin frank grace heidi ivan judy mallory "
              "oscar peggy trent victor walter deploy ansible jenkins backup "
              "nagios postgres www-data git ubuntu admin ops").split()

BAD_USERS = ("admin test user oracle ftpuser guest pi ubnt support postgres "
             "mysql hadoop git minecraft teamspeak deploy jenkins tomcat "
             "nagios www ftp mail apache demo server info sales student").split()

TLDS = ("com", "net", "org", "io", "de", "fr", "co.uk", "nl", "es", "it")


def rand_public_ip(rng):
    while True:
        a = rng.randint(1, 223)
        if a in (10, 127, 169, 172, 192, 0, 100):
            continue
        return "%d.%d.%d.%d" % (a, rng.randint(0, 255), rng.randint(0, 255),
                                rng.randint(1, 254))


def rand_ipv6(rng):
    return "2a0%d:%x:%x:%x::%x" % (rng.randint(0, 9), rng.getrandbits(16),
                                   rng.getrandbits(16), rng.getrandbits(16),
                                   rng.getrandbits(16))


def slug(rng, lo=1, hi=4):
    return "-".join(rng.choice(WORDS) for _i in range(rng.randint(lo, hi)))


# --------------------------------------------------------------------------
# time: per-second line counts with a diurnal pattern
# --------------------------------------------------------------------------

class Clock:
    """Gives, second after second, how many lines that second holds.

    The mean rate follows a day curve (quiet at night, busy in the
    afternoon); counts are drawn from a pre-built table so that the hot
    loop only does table look-ups.
    """

    def __init__(self, rng, mean_rate):
        self.rng = rng
        self.t = START_EPOCH + rng.randint(0, 86400 * 20)
        # 24 hourly rates, then for each a table of 256 Poisson-ish counts
        self.tables = []
        for hour in range(24):
            factor = 0.35 + 0.65 * (1 + math.sin(
                (hour - 9) / 24.0 * 2 * 3.141592653589793)) / 2 * 1.6
            lam = max(0.2, mean_rate * factor)
            self.tables.append([self._poisson(lam) for _i in range(256)])

    def _poisson(self, lam):
        # Knuth for small lambda, normal approximation otherwise
        rng = self.rng
        if lam < 30:
            l_exp, k, p = math.exp(-lam), 0, 1.0
            while True:
                p *= rng.random()
                if p <= l_exp:
                    return k
                k += 1
        return max(0, int(rng.gauss(lam, lam ** 0.5) + 0.5))

    def seconds(self, n_lines_wanted):
        """Yield (epoch, count) until about n_lines_wanted lines."""
        got = 0
        rng = self.rng
        while got < n_lines_wanted:
            table = self.tables[(self.t // 3600) % 24]
            k = table[rng.getrandbits(8)]
            if k:
                yield self.t, k
                got += k
            self.t += 1


# --------------------------------------------------------------------------
# Apache combined access log
# --------------------------------------------------------------------------

UAS = [
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36", 30),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36", 12),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.{m} Safari/605.1.15", 9),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0", 7),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36", 3),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_{m} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.{m} Mobile/15E148 Safari/604.1", 14),
    ("Mozilla/5.0 (Linux; Android 14; SM-S91{m}B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Mobile Safari/537.36", 10),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36 Edg/{v}.0.{m}.0", 5),
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", 3),
    ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", 2),
    ("Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)", 1),
    ("curl/7.{v}.0", 1),
    ("python-requests/2.{m}.0", 1),
    ("Go-http-client/1.1", 1),
    ("Prometheus/2.{m}.0", 1),
]

STATIC_EXT = (("js", 8), ("css", 5), ("png", 6), ("jpg", 8), ("svg", 3),
              ("woff2", 2), ("webp", 4), ("ico", 1))


def _access_pools(rng):
    ua_strings, ua_w = [], []
    for tmpl, w in UAS:
        for _i in range(6):
            ua_strings.append(tmpl.format(v=rng.randint(100, 124),
                                          m=rng.randint(0, 9)))
            ua_w.append(w)
    ua_cum = list(itertools.accumulate(ua_w))

    # clients: IP + ident/user + user agent; Zipf popularity
    clients = []
    for i in range(30000):
        ip = rand_ipv6(rng) if rng.random() < 0.06 else rand_public_ip(rng)
        user = rng.choice(USER_NAMES) if rng.random() < 0.03 else "-"
        ua = rng.choices(ua_strings, cum_weights=ua_cum)[0]
        clients.append(("%s - %s [" % (ip, user), ' "%s"\n' % ua))
    rng.shuffle(clients)
    client_cum = zipf_cum(len(clients), 1.05)

    # requests: "METHOD PATH PROTO" STATUS BYTES
    products = [slug(rng, 2, 4) for _i in range(4000)]
    categories = [slug(rng, 1, 2) for _i in range(120)]
    assets = [("%s.%s.%s" % (rng.choice(WORDS), rand_hex(rng, 8), ext),
               int(rng.lognormvariate(9.5, 1.3)))
              for ext, w in STATIC_EXT for _i in range(w * 12)]
    search_terms = [slug(rng, 1, 3).replace("-", "+") for _i in range(3000)]

    def request():
        r = rng.random()
        method = "GET"
        if r < 0.42:
            a, size = rng.choice(assets)  # a static file always has its size
            path = "/static/%s" % a if not a.endswith(("jpg", "webp", "png")) \
                else "/images/%s/%s" % (categories[len(a) % len(categories)], a)
            status = rng.choices((200, 304, 404, 206), (80, 17, 2, 1))[0]
            if status == 206:
                size = rng.randint(1, size)
        elif r < 0.67:
            p = rng.choice(products)
            path = rng.choice(("/products/%s" % p, "/products/%s?ref=%s" % (p, rng.choice(("home", "search", "email", "ad"))),
                               "/category/%s?page=%d" % (rng.choice(categories), rng.randint(1, 40)),
                               "/category/%s" % rng.choice(categories), "/", "/cart", "/account"))
            status = rng.choices((200, 302, 301, 404, 500), (90, 4, 2, 3, 1))[0]
            size = int(rng.lognormvariate(10.3, 0.6))
        elif r < 0.90:
            method = rng.choices(("GET", "POST", "PUT", "DELETE", "OPTIONS"), (60, 25, 6, 3, 6))[0]
            path = rng.choice((
                "/api/v1/products/%d" % rng.randint(1, 99999),
                "/api/v1/orders/%d" % rng.randint(100000, 999999),
                "/api/v1/search?q=%s&page=%d" % (rng.choice(search_terms), rng.randint(1, 9)),
                "/api/v1/cart/items",
                "/api/v1/users/%d/recommendations?limit=%d" % (rng.randint(1, 300000), rng.choice((5, 10, 20))),
                "/api/v2/inventory/%s" % rand_hex(rng, 12),
                "/api/v1/session",
            ))
            status = rng.choices((200, 201, 204, 400, 401, 403, 404, 429, 500, 502, 503),
                                 (70, 8, 6, 3, 3, 1, 3, 2, 2, 1, 1))[0]
            size = int(rng.lognormvariate(7.0, 1.4))
        else:
            path, status, size = rng.choice((
                ("/favicon.ico", 200, 1150), ("/robots.txt", 200, 312),
                ("/health", 200, 2), ("/sitemap.xml", 200, 48213),
                ("/wp-login.php", 404, 196), ("/.env", 404, 196),
                ("/xmlrpc.php", 404, 196), ("/admin/config.php", 404, 196),
                ("/server-status", 403, 199), ("/login", 200, 5321),
                ("/logout", 302, 0), ("/feed.xml", 200, 20480),
            ))
            if rng.random() < 0.2:
                method = "HEAD"
        if status in (204, 304):
            size = "-" if status == 304 and rng.random() < 0.5 else 0
        elif status in (301, 302):
            size = rng.choice((0, 229, 235))
        elif status >= 400 and size != 196:
            size = rng.randint(150, 600)
        proto = rng.choices(("HTTP/1.1", "HTTP/2.0", "HTTP/1.0"), (70, 28, 2))[0]
        return '] "%s %s %s" %s %s ' % (method, path, proto, status, size)

    reqs = [request() for _i in range(120000)]
    req_cum = zipf_cum(len(reqs), 0.8)

    refs = ['"-"'] * 40
    for _i in range(6000):
        r = rng.random()
        if r < 0.6:
            refs.append('"https://www.shop.example.com/%s"' % rng.choice((
                "", "products/" + rng.choice(products),
                "category/" + rng.choice(categories), "cart")))
        elif r < 0.85:
            refs.append('"https://www.google.%s/"' % rng.choice(TLDS))
        else:
            refs.append('"https://%s.%s/%s"' % (rng.choice(WORDS), rng.choice(TLDS), slug(rng, 1, 3)))
    ref_w = [400.0 / 40] * 40 + [1.0] * (len(refs) - 40)
    ref_cum = list(itertools.accumulate(ref_w))
    return clients, client_cum, reqs, req_cum, refs, ref_cum


def gen_access(rng, pools):
    clients, client_cum, reqs, req_cum, refs, ref_cum = pools
    clock = Clock(rng, mean_rate=35)
    choices = rng.choices
    gmtime = time.gmtime
    while True:
        ts_list = []
        for t, k in clock.seconds(CHUNK_CHARS // 230):
            g = gmtime(t)
            ts_list += ["%02d/%s/%04d:%02d:%02d:%02d +0000" % (
                g.tm_mday, MONTHS[g.tm_mon - 1], g.tm_year,
                g.tm_hour, g.tm_min, g.tm_sec)] * k
        n = len(ts_list)
        cl = choices(clients, cum_weights=client_cum, k=n)
        rq = choices(reqs, cum_weights=req_cum, k=n)
        rf = choices(refs, cum_weights=ref_cum, k=n)
        yield "".join([c[0] + ts + r + f + c[1]
                       for c, ts, r, f in zip(cl, ts_list, rq, rf)])


# --------------------------------------------------------------------------
# syslog (RFC 3164-ish, one host)
# --------------------------------------------------------------------------

def _syslog_pool(rng):
    internal = ["10.0.%d.%d" % (rng.randint(0, 3), rng.randint(2, 250)) for _i in range(40)]
    attackers = [rand_public_ip(rng) for _i in range(3000)]
    att_cum = zipf_cum(len(attackers), 1.3)
    emails = ["%s@%s.%s" % (rng.choice(USER_NAMES), rng.choice(WORDS), rng.choice(TLDS)) for _i in range(800)]
    cron_cmds = (
        "command -v debian-sa1 > /dev/null && debian-sa1 1 1",
        "   cd / && run-parts --report /etc/cron.hourly",
        "[ -x /usr/lib/php/sessionclean ] && if [ ! -d /run/systemd/system ]; then /usr/lib/php/sessionclean; fi",
        "/usr/local/bin/backup.sh >> /var/log/backup.log 2>&1",
        "/usr/bin/certbot renew --quiet",
        "test -x /usr/sbin/anacron || ( cd / && run-parts --report /etc/cron.daily )",
        "/opt/app/bin/cleanup --older-than 7d",
    )
    sudo_cmds = ("/usr/bin/systemctl restart nginx", "/usr/bin/apt-get update",
                 "/usr/bin/journalctl -u app -n 200", "/usr/bin/tail -f /var/log/syslog",
                 "/bin/df -h", "/usr/bin/du -sh /var/log", "/usr/bin/systemctl status app")
    services = ("nginx", "app", "postgresql@15-main", "redis-server", "node-exporter",
                "logrotate", "apt-daily", "man-db", "fstrim", "certbot", "sysstat-collect")
    state = {"session": rng.randint(1000, 5000), "qid": 0}

    def ssh_pid():
        return rng.randint(1000, 65535)

    def port():
        return rng.randint(1024, 65535)

    def msg():
        r = rng.random()
        if r < 0.30:
            ip = rng.choices(attackers, cum_weights=att_cum)[0]
            p = ssh_pid()
            return rng.choice((
                "sshd[%d]: Invalid user %s from %s port %d" % (p, rng.choice(BAD_USERS), ip, port()),
                "sshd[%d]: Failed password for invalid user %s from %s port %d ssh2" % (p, rng.choice(BAD_USERS), ip, port()),
                "sshd[%d]: Failed password for root from %s port %d ssh2" % (p, ip, port()),
                "sshd[%d]: Connection closed by authenticating user root %s port %d [preauth]" % (p, ip, port()),
                "sshd[%d]: Received disconnect from %s port %d:11: Bye Bye [preauth]" % (p, ip, port()),
                "sshd[%d]: Disconnected from invalid user %s %s port %d [preauth]" % (p, rng.choice(BAD_USERS), ip, port()),
                "sshd[%d]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=%s  user=root" % (p, ip),
            ))
        if r < 0.38:
            u = rng.choice(USER_NAMES[:20])
            ip, p = rng.choice(internal), ssh_pid()
            return rng.choice((
                "sshd[%d]: Accepted publickey for %s from %s port %d ssh2: ED25519 SHA256:%s" % (p, u, ip, port(), rand_hex(rng, 43)),
                "sshd[%d]: pam_unix(sshd:session): session opened for user %s(uid=%d) by (uid=0)" % (p, u, 1000 + USER_NAMES.index(u)),
                "sshd[%d]: pam_unix(sshd:session): session closed for user %s" % (p, u),
                "sshd[%d]: Received disconnect from %s port %d:11: disconnected by user" % (p, ip, port()),
            ))
        if r < 0.55:
            p = rng.randint(1000, 65535)
            return rng.choice((
                "CRON[%d]: (root) CMD (%s)" % (p, rng.choice(cron_cmds)),
                "CRON[%d]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)" % p,
                "CRON[%d]: pam_unix(cron:session): session closed for user root" % p,
            ))
        if r < 0.67:
            s = rng.choice(services)
            state["session"] += rng.randint(0, 3)
            return rng.choice((
                "systemd[1]: Starting %s.service..." % s,
                "systemd[1]: %s.service: Deactivated successfully." % s,
                "systemd[1]: Finished %s.service." % s,
                "systemd[1]: Started session-%d.scope - Session %d of User %s." % (state["session"], state["session"], rng.choice(USER_NAMES)),
                "systemd[1]: %s.service: Consumed %.3fs CPU time." % (s, rng.uniform(0.01, 40)),
                "systemd-logind[%d]: New session %d of user %s." % (rng.choice((612, 614)), state["session"], rng.choice(USER_NAMES)),
                "systemd-logind[%d]: Removed session %d." % (rng.choice((612, 614)), state["session"] - rng.randint(1, 30)),
            ))
        if r < 0.75:
            ip = rng.choices(attackers, cum_weights=att_cum)[0]
            return ("kernel: [%d.%06d] [UFW BLOCK] IN=eth0 OUT= MAC=52:54:00:12:34:56:fe:ff:ff:ff:ff:ff:08:00 SRC=%s DST=10.0.0.5 "
                    "LEN=%d TOS=0x00 PREC=0x00 TTL=%d ID=%d %sPROTO=TCP SPT=%d DPT=%d WINDOW=%d RES=0x00 SYN URGP=0") % (
                rng.randint(100000, 2500000), rng.randint(0, 999999),
                ip,
                rng.choice((40, 44, 52, 60)), rng.randint(30, 250), rng.randint(0, 65535),
                rng.choice(("", "DF ")), port(),
                rng.choice((22, 23, 25, 80, 443, 445, 1433, 3306, 3389, 5432, 6379, 8080, 8443)),
                rng.choice((1024, 14600, 29200, 64240, 65535)))
        if r < 0.88:
            state["qid"] += 1
            qid = "%X" % (0x4A0000000 + rng.getrandbits(28))
            ip = rng.choice(internal)
            pid = rng.randint(20000, 40000)
            return rng.choice((
                "postfix/smtpd[%d]: connect from unknown[%s]" % (pid, ip),
                "postfix/smtpd[%d]: %s: client=unknown[%s]" % (pid, qid, ip),
                "postfix/cleanup[%d]: %s: message-id=<%s@%s.example.com>" % (pid + 2, qid, rand_hex(rng, 16), rng.choice(WORDS)),
                "postfix/qmgr[1187]: %s: from=<%s>, size=%d, nrcpt=1 (queue active)" % (qid, rng.choice(emails), rng.randint(800, 90000)),
                "postfix/smtp[%d]: %s: to=<%s>, relay=smtp.%s.%s[%s]:25, delay=%.2f, delays=%.2f/0.01/%.2f/%.2f, dsn=2.0.0, status=sent (250 2.0.0 OK %d)" % (
                    pid + 5, qid, rng.choice(emails), rng.choice(WORDS), rng.choice(TLDS), rand_public_ip(rng),
                    rng.uniform(0.1, 3), rng.uniform(0, 0.5), rng.uniform(0, 1), rng.uniform(0, 1), rng.getrandbits(31)),
                "postfix/qmgr[1187]: %s: removed" % qid,
                "postfix/smtpd[%d]: disconnect from unknown[%s] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5" % (pid, ip),
            ))
        if r < 0.96:
            u = rng.choice(USER_NAMES[:16])
            return rng.choice((
                "sudo[%d]:     %s : TTY=pts/%d ; PWD=/home/%s ; USER=root ; COMMAND=%s" % (
                    rng.randint(1000, 65535), u, rng.randint(0, 5), u, rng.choice(sudo_cmds)),
                "sudo[%d]: pam_unix(sudo:session): session opened for user root(uid=0) by %s(uid=%d)" % (
                    rng.randint(1000, 65535), u, 1000 + USER_NAMES.index(u)),
            ))
        return rng.choice((
            "dhclient[811]: DHCPREQUEST for 10.0.0.5 on eth0 to 10.0.0.1 port 67",
            "dhclient[811]: DHCPACK of 10.0.0.5 from 10.0.0.1",
            "dhclient[811]: bound to 10.0.0.5 -- renewal in %d seconds." % rng.randint(1200, 1800),
            "chronyd[702]: Selected source %s (%d.debian.pool.ntp.org)" % (rand_public_ip(rng), rng.randint(0, 3)),
            "chronyd[702]: System clock wrong by %.6f seconds" % rng.uniform(-0.5, 0.5),
            "rsyslogd[689]: [origin software=\"rsyslogd\" swVersion=\"8.2302.0\" x-pid=\"689\" x-info=\"https://www.rsyslog.com\"] rsyslogd was HUPed",
            "app[%d]: worker %d processed %d jobs in %.1fs" % (rng.choice((2231, 2232, 2233)), rng.randint(1, 8), rng.randint(1, 500), rng.uniform(0.1, 60)),
        ))

    pool = [" web01 %s\n" % msg() for _i in range(150000)]
    return pool, zipf_cum(len(pool), 0.7)


def gen_syslog(rng, pools):
    pool, cum = pools
    clock = Clock(rng, mean_rate=6)
    choices = rng.choices
    gmtime = time.gmtime
    while True:
        ts_list = []
        for t, k in clock.seconds(CHUNK_CHARS // 130):
            g = gmtime(t)
            ts_list += ["%s %2d %02d:%02d:%02d" % (MONTHS[g.tm_mon - 1], g.tm_mday,
                                                   g.tm_hour, g.tm_min, g.tm_sec)] * k
        msgs = choices(pool, cum_weights=cum, k=len(ts_list))
        yield "".join([ts + m for ts, m in zip(ts_list, msgs)])


# --------------------------------------------------------------------------
# JSON lines (structured application log)
# --------------------------------------------------------------------------

def _jsonl_pool(rng):
    services = ("checkout", "catalog", "auth", "payments", "search", "notifier")
    endpoints = ["/api/v1/%s/%s" % (rng.choice(("orders", "products", "users", "cart", "search", "payments")),
                                    rng.choice(("{id}", "list", "items", "status", "summary")))
                 for _i in range(60)]
    hosts = ["%s-%s-%s" % (rng.choice(services), rand_hex(rng, 10), rand_hex(rng, 5)) for _i in range(24)]
    pool = []
    for _i in range(60000):
        r = rng.random()
        d = {}
        if r < 0.55:
            d["level"] = "INFO"
            d["logger"] = "http.access"
            d["msg"] = "request completed"
            d["method"] = rng.choices(("GET", "POST", "PUT", "DELETE"), (70, 20, 7, 3))[0]
            d["path"] = rng.choice(endpoints).replace("{id}", str(rng.randint(1, 999999)))
            d["status"] = rng.choices((200, 201, 204, 400, 401, 404, 409, 500, 503), (80, 6, 4, 3, 2, 3, 1, 1, 1))[0]
            d["bytes"] = int(rng.lognormvariate(7, 1.2))
            d["user_id"] = rng.randint(1, 300000) if rng.random() < 0.7 else None
        elif r < 0.75:
            d["level"] = "DEBUG"
            d["logger"] = rng.choice(("db.pool", "cache.redis", "worker.queue"))
            d["msg"] = rng.choice(("query executed", "cache hit", "cache miss", "job dequeued", "connection acquired"))
            d["table"] = rng.choice(("orders", "order_items", "users", "products", "inventory", "sessions"))
            d["rows"] = rng.randint(0, 500)
        elif r < 0.90:
            d["level"] = "INFO"
            d["logger"] = rng.choice(("checkout.service", "payments.gateway", "notifier.email"))
            d["msg"] = rng.choice(("order placed", "payment authorized", "email sent", "stock reserved", "refund issued"))
            d["order_id"] = "ord_%s" % rand_hex(rng, 12)
            d["amount"] = round(rng.lognormvariate(3.5, 1.0), 2)
            d["currency"] = rng.choices(("EUR", "USD", "GBP"), (60, 30, 10))[0]
        elif r < 0.98:
            d["level"] = "WARN"
            d["logger"] = rng.choice(("http.client", "db.pool", "ratelimit"))
            d["msg"] = rng.choice(("slow upstream response", "retrying request", "pool exhausted, waiting", "rate limit exceeded"))
            d["attempt"] = rng.randint(1, 5)
            d["upstream"] = "http://%s.internal:%d" % (rng.choice(services), rng.choice((8080, 9090, 8443)))
        else:
            d["level"] = "ERROR"
            d["logger"] = rng.choice(("payments.gateway", "http.server"))
            d["msg"] = rng.choice(("unhandled exception", "upstream returned 502", "card declined"))
            d["error"] = {"type": rng.choice(("TimeoutError", "ConnectionResetError", "ValueError", "KeyError")),
                          "stack": "Traceback (most recent call last):\\n  File \"/app/%s.py\", line %d, in %s\\n" % (
                              rng.choice(services), rng.randint(10, 900), rng.choice(WORDS))}
        d["service"] = rng.choice(services)
        d["host"] = rng.choice(hosts)
        d["version"] = "1.%d.%d" % (rng.randint(40, 42), rng.randint(0, 9))
        body = json.dumps(d, separators=(",", ":"))
        # the prefix ('{"ts":..., "request_id":...,') is added per line
        pool.append(body[1:-1])
    durations = ["%.3f" % rng.lognormvariate(2.5, 1.1) for _i in range(20000)]
    return pool, zipf_cum(len(pool), 0.3), durations


def gen_jsonl(rng, pools):
    pool, cum, durations = pools
    clock = Clock(rng, mean_rate=25)
    choices = rng.choices
    gmtime = time.gmtime
    getrandbits = rng.getrandbits
    while True:
        ts_list = []
        for t, k in clock.seconds(CHUNK_CHARS // 330):
            g = gmtime(t)
            base = "%04d-%02d-%02dT%02d:%02d:%02d." % (g.tm_year, g.tm_mon, g.tm_mday,
                                                       g.tm_hour, g.tm_min, g.tm_sec)
            ts_list += [base + "%03dZ" % ms for ms in sorted(getrandbits(10) % 1000 for _i in range(k))]
        n = len(ts_list)
        bodies = choices(pool, cum_weights=cum, k=n)
        durs = choices(durations, k=n)
        yield "".join(['{"ts":"%s","request_id":"%016x",%s,"duration_ms":%s}\n'
                       % (ts, getrandbits(64), b, dm)
                       for ts, b, dm in zip(ts_list, bodies, durs)])


# --------------------------------------------------------------------------
# error log (Apache and application errors, Python tracebacks)
# --------------------------------------------------------------------------

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

ERROR_MESSAGES = (
    (3, "[proxy:error] [pid {pid}:tid {tid}] (111)Connection refused: AH00957: http: attempt to connect "
        "to 127.0.0.1:{bport} (backend) failed"),
    (3, "[php:error] [pid {pid}:tid {tid}] [client {ip}:{port}] PHP Warning:  Undefined array key \"{word}\" "
        "in /srv/app/src/Controller/{cls}Controller.php on line {line}"),
    (1, "[core:error] [pid {pid}:tid {tid}] [client {ip}:{port}] AH00126: Invalid URI in request "
        "GET /..%2f..%2fetc/passwd HTTP/1.1"),
    (3, "[app:error] [pid {pid}:tid {tid}] request_id={rid} upstream timed out after 30000 ms while reading "
        "response header from upstream, user_id={n}"),
    (4, "[app:warn] [pid {pid}:tid {tid}] request_id={rid} slow query ({ms} ms): SELECT * FROM {table} "
        "WHERE customer_id = {n} ORDER BY created_at DESC LIMIT 50"),
    (1, "[ssl:warn] [pid {pid}:tid {tid}] AH01909: www.shop.example.com:443:0 server certificate does NOT "
        "include an ID which matches the server name"),
    (1, "[mpm_event:notice] [pid {pid}:tid {tid}] AH00489: Apache/2.4.57 (Debian) configured -- resuming "
        "normal operations"),
)
TRACEBACK = (
    "[app:error] [pid {pid}:tid {tid}] request_id={rid} unhandled exception",
    "Traceback (most recent call last):",
    '  File "/srv/app/app/views.py", line {line}, in {word}',
    "    order = service.place_order(cart, user)",
    '  File "/srv/app/app/service.py", line {line2}, in place_order',
    '    raise PaymentError(f"gateway returned {{resp.status}}")',
    "app.errors.PaymentError: gateway returned {status}",
)


def _error_pool(rng):
    workers = [(rng.randint(1000, 40000), rng.randint(139000000000000, 139999999999999)) for _i in range(24)]
    clients = ["10.%d.%d.%d" % (rng.randint(0, 255), rng.randint(0, 255), rng.randint(1, 254))
               for _i in range(3000)]
    tables = ("orders", "order_items", "users", "products", "inventory", "sessions")
    weights = [w for w, _m in ERROR_MESSAGES] + [1]
    templates = [m for _w, m in ERROR_MESSAGES] + ["\n".join(TRACEBACK)]
    pool = []
    for template in rng.choices(templates, weights=weights, k=40000):
        pid, tid = rng.choice(workers)
        word = rng.choice(WORDS)
        pool.append(" " + template.format(
            pid=pid, tid=tid, ip=rng.choice(clients), port=rng.randint(1024, 65535),
            bport=rng.choice((8080, 8081, 9000)), word=word, cls=word.capitalize(),
            line=rng.randint(10, 900), line2=rng.randint(10, 900), rid=rand_hex(rng, 16),
            n=rng.randint(1, 99999), ms=rng.randint(500, 9000), table=rng.choice(tables),
            status=rng.choice((500, 502, 503, 504))) + "\n")
    return pool, zipf_cum(len(pool), 0.5)


def gen_error(rng, pools):
    pool, cum = pools
    clock = Clock(rng, mean_rate=2)
    choices = rng.choices
    gmtime = time.gmtime
    getrandbits = rng.getrandbits
    while True:
        ts_list = []
        for t, k in clock.seconds(CHUNK_CHARS // 200):
            g = gmtime(t)
            head = "[%s %s %02d %02d:%02d:%02d." % (
                DAYS[g.tm_wday], MONTHS[g.tm_mon - 1], g.tm_mday, g.tm_hour, g.tm_min, g.tm_sec)
            tail = " %04d]" % g.tm_year
            ts_list += [head + "%06d" % us + tail for us in sorted(getrandbits(20) % 1000000 for _i in range(k))]
        msgs = choices(pool, cum_weights=cum, k=len(ts_list))
        yield "".join([ts + m for ts, m in zip(ts_list, msgs)])


# --------------------------------------------------------------------------
# the interface
# --------------------------------------------------------------------------

# kind -> (vocabulary builder, stream generator)
GENERATORS = {
    "access": (_access_pools, gen_access),
    "error": (_error_pool, gen_error),
    "jsonl": (_jsonl_pool, gen_jsonl),
    "syslog": (_syslog_pool, gen_syslog),
}
KINDS = tuple(sorted(GENERATORS))


@functools.lru_cache(maxsize=None)
def _vocabulary(kind):
    """The kind's pool of line fragments: built once per process, from a fixed seed."""
    build, _gen = GENERATORS[kind]
    return build(random.Random("loggen-vocabulary:%s" % kind))


def chunks(kind, seed):
    """Endless ``str`` chunks (whole lines) of ``kind`` log text for ``seed``."""
    if kind not in GENERATORS:
        raise ValueError("unknown log kind %r (one of %s)" % (kind, ", ".join(KINDS)))
    _build, gen = GENERATORS[kind]
    return gen(random.Random("%s:%s" % (kind, seed)), _vocabulary(kind))


def _exact(size, seed, kind):
    """``bytes`` chunks adding up to exactly ``size``; the last one ends with a newline."""
    written = 0
    if size <= 0:
        return
    for text in chunks(kind, seed):
        data = text.encode("ascii")
        rest = size - written
        if len(data) >= rest:
            data = data[:rest]
            if not data.endswith(b"\n"):
                data = data[:-1] + b"\n"
            yield data
            return
        written += len(data)
        yield data


def log_bytes(size, seed=1, kind="access"):
    """Exactly ``size`` bytes of ``kind`` log text for ``seed``, ending with a newline."""
    return b"".join(_exact(size, seed, kind))


def write_log(path, size, seed=1, kind="access"):
    """Write ``log_bytes(size, seed, kind)`` to ``path`` (streamed, replaced atomically); return its sha256."""
    digest = hashlib.sha256()
    tmp = "%s.part" % path
    with open(tmp, "wb") as f:
        for data in _exact(size, seed, kind):
            f.write(data)
            digest.update(data)
    os.replace(tmp, path)
    return digest.hexdigest()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    ap.add_argument("--kind", choices=KINDS, default="access")
    ap.add_argument("--size", default="256M", help="bytes, or with K/M/G/T suffix (binary)")
    ap.add_argument("--seed", default="1", help="an int or any string")
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    size = parse_size(a.size)
    t0 = time.monotonic()
    digest = write_log(a.out, size, a.seed, a.kind)
    dt = time.monotonic() - t0
    print("%s  %s" % (digest, a.out))
    print("kind=%s size=%d seed=%s seconds=%.1f (%.0f MiB/s)"
          % (a.kind, size, a.seed, dt, size / dt / 1048576 if dt else 0), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
