"""The one set of typed checks every validation site uses (infembed.errors): what each accepts and refuses, and the
one line it says."""

import pytest

from infembed.errors import ConfigError, check_bool, check_choice, check_int, check_number

REFUSED = [
    (lambda: check_int(True, "k", minimum=0), "k=True: expected an integer >= 0"),
    (lambda: check_int(2.0, "k", minimum=1), "k=2.0: expected an integer >= 1"),
    (lambda: check_int(0, "k", minimum=1), "k=0: expected an integer >= 1"),
    (lambda: check_number(0, "k", 0, bounds="(]"), "k=0: expected a number > 0"),
    (lambda: check_number(-1, "k"), "k=-1: expected a number >= 0"),
    (lambda: check_number(1, "k", 0, 1, bounds="[)"), "k=1: expected a number in [0, 1)"),
    (lambda: check_number(False, "k", 0, 1), "k=False: expected a number in [0, 1]"),
    (lambda: check_number("0.5", "k", 0, 1), "k='0.5': expected a number in [0, 1]"),
    (lambda: check_bool("true", "k"), "k='true': expected true or false"),
    (lambda: check_bool(1, "k"), "k=1: expected true or false"),
    (lambda: check_choice(1, (True, False, "both"), "k"), "k=1: expected one of True, False, both"),
    (lambda: check_choice("max", ("mean", "cls"), "k"), "k='max': expected one of mean, cls"),
]


@pytest.mark.parametrize("check, message", REFUSED, ids=[m for _, m in REFUSED])
def test_refused_values_name_the_key_and_what_is_expected(check, message):
    with pytest.raises(ConfigError) as caught:
        check()
    assert str(caught.value) == message


def test_accepted_values_pass():
    check_int(0, "k", minimum=0)
    check_number(0.5, "k", 0, 1, bounds="()")
    check_number(1, "k", 0, 1)
    check_number(3.5, "k", 0, bounds="(]")
    check_bool(False, "k")
    check_choice(True, (True, False, "both"), "k")
    check_choice("both", (True, False, "both"), "k")
