/* DTable's columns: freeing and naming (column.h). */
#include "column.h"

#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void dt_column_free(dt_column_t *c) {
    if (!c) return;
    dt_free(c->valid);
    dt_free(c->values);
    dt_free(c->offsets);
    c->valid = NULL;
    c->values = NULL;
    c->offsets = NULL;
    c->n = 0;
    c->nbytes = 0;
}

const char *dt_type_name(dt_type_t t) {
    switch (t) {
    case DT_INT64:
        return "int64";
    case DT_FLOAT64:
        return "float64";
    case DT_BOOL:
        return "bool";
    case DT_STRING:
        return "string";
    case DT_TIMESTAMP:
        return "timestamp";
    }
    return "unknown";
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static bool digits(const char *p, size_t at, size_t k, int64_t *v) {
    int64_t x = 0;
    for (size_t i = at; i < at + k; i++) {
        if (p[i] < '0' || p[i] > '9') return false;
        x = x * 10 + (p[i] - '0');
    }
    *v = x;
    return true;
}

bool dt_parse_timestamp(const char *p, size_t n, int64_t *out) {
    int64_t y, mo, d, h = 0, mi = 0, s = 0, us = 0, off = 0;
    if (n < 10 || !digits(p, 0, 4, &y) || p[4] != '-' || !digits(p, 5, 2, &mo) || p[7] != '-' ||
        !digits(p, 8, 2, &d))
        return false;
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] + (mo == 2 && leap)) return false;
    if (n > 10) {
        if ((p[10] != 'T' && p[10] != ' ') || n < 19 || !digits(p, 11, 2, &h) || p[13] != ':' ||
            !digits(p, 14, 2, &mi) || p[16] != ':' || !digits(p, 17, 2, &s))
            return false;
        if (h > 23 || mi > 59 || s > 59) return false;
        size_t i = 19;
        if (i < n && p[i] == '.') {
            size_t k = 0;
            i++;
            while (i + k < n && p[i + k] >= '0' && p[i + k] <= '9')
                k++;
            if (k < 1 || k > 9) return false;
            for (size_t j = 0; j < 6; j++)
                us = us * 10 + (j < k ? p[i + j] - '0' : 0);
            i += k;
        }
        if (i < n) {
            if (p[i] == 'Z') {
                if (i + 1 != n) return false;
            } else if (p[i] == '+' || p[i] == '-') {
                int64_t oh, om;
                if (n - i != 6 || !digits(p, i + 1, 2, &oh) || p[i + 3] != ':' ||
                    !digits(p, i + 4, 2, &om) || oh > 23 || om > 59)
                    return false;
                off = (oh * 3600 + om * 60) * (p[i] == '-' ? -1 : 1);
            } else {
                return false;
            }
        }
    }
    int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s - off;
    *out = secs * 1000000 + us;
    return true;
}

/* The date of a day count since 1970-01-01 (H. Hinnant's civil_from_days). */
static void civil_from_days(int64_t z, int64_t *y, int *m, int *d) {
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

int dt_format_timestamp(int64_t us, char out[40]) {
    int64_t secs = us / 1000000, frac = us % 1000000;
    if (frac < 0) {
        frac += 1000000;
        secs -= 1;
    }
    int64_t days = secs / 86400, rem = secs % 86400;
    if (rem < 0) {
        rem += 86400;
        days -= 1;
    }
    int64_t y;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    int h = (int)(rem / 3600), mi = (int)(rem / 60 % 60), s = (int)(rem % 60);
    if (y < 0 || y > 9999) {
        if (frac)
            return snprintf(out, 40, "%04lld-%02d-%02dT%02d:%02d:%02d.%06lldZ", (long long)y, m, d,
                            h, mi, s, (long long)frac);
        return snprintf(out, 40, "%04lld-%02d-%02dT%02d:%02d:%02dZ", (long long)y, m, d, h, mi, s);
    }
    /* The common years digit by digit: snprintf with eight conversions was a third of
     * write_csv's time on a table with one timestamp column among seven. */
    static const char two[] = "00010203040506070809101112131415161718192021222324"
                              "25262728293031323334353637383940414243444546474849"
                              "50515253545556575859606162636465666768697071727374"
                              "75767778798081828384858687888990919293949596979899";
    int yy = (int)y;
    char *o = out;
    *o++ = (char)('0' + yy / 1000);
    *o++ = (char)('0' + yy / 100 % 10);
    memcpy(o, two + 2 * (yy % 100), 2), o += 2;
    *o++ = '-';
    memcpy(o, two + 2 * m, 2), o += 2;
    *o++ = '-';
    memcpy(o, two + 2 * d, 2), o += 2;
    *o++ = 'T';
    memcpy(o, two + 2 * h, 2), o += 2;
    *o++ = ':';
    memcpy(o, two + 2 * mi, 2), o += 2;
    *o++ = ':';
    memcpy(o, two + 2 * s, 2), o += 2;
    if (frac) {
        *o++ = '.';
        for (int k = 5; k >= 0; k--, frac /= 10)
            o[k] = (char)('0' + frac % 10);
        o += 6;
    }
    *o++ = 'Z';
    *o = 0;
    return (int)(o - out);
}

dt_allocator_t dt_mem = {malloc, realloc, free};
