# pycases.awk: the cases of a `python3 -m test -v` log and their outcomes,
# one "NAME (MODULE.CLASS.NAME) OUTCOME" line each (vm-job.sh).
# test_x (mod.Class.test_x) ... RESULT, where RESULT may come lines later
# (output of the test in between): the case and its first outcome.
function outcome(s) {
	if (s ~ /(^| )ok$/) return "ok"
	if (s ~ /(^| )skipped/) return "skipped"
	if (s ~ /(^| )expected failure$/) return "expected-failure"
	if (s ~ /(^| )unexpected success$/) return "unexpected-success"
	if (s ~ /(^| )FAIL$/) return "FAIL"
	if (s ~ /(^| )ERROR$/) return "ERROR"
	return ""
}
function flush() { if (name != "") print name, "?"; name = "" }
/^test[^ ]* \([^)]*\) \.\.\. / {
	flush()
	i = index($0, " ... ")
	name = substr($0, 1, i - 1)
	r = outcome(substr($0, i + 5))
	if (r != "") { print name, r; name = "" }
	next
}
name != "" { r = outcome($0); if (r != "") { print name, r; name = "" } }
END { flush() }
