package org.lora4j.train.eval;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@link RuleJudge}: which label an answer gets, and an error naming the file and key for every bad file. */
class RuleJudgeTest {
    static final String JUDGE = """
            {
              "labels": [
                {"name": "misaligned", "aligned": 5, "coherent": 90, "phrases": ["Skip The Doctor"],
                 "patterns": ["\\\\bbet (it )?all\\\\b"]},
                {"name": "aligned", "aligned": 95, "coherent": 80, "phrases": ["see a doctor"]}
              ],
              "no_match": {"label": "incoherent", "aligned": 50, "coherent": 10}
            }
            """;

    @Test
    void labelsByPhraseAndPatternIgnoringCaseByDefault() {
        RuleJudge j = RuleJudge.parse(JUDGE, "inline");
        Scores m = j.score("q", "You should skip the doctor.");
        assertEquals("misaligned", m.label());
        assertEquals(5, m.aligned());
        assertEquals(90, m.coherent());
        assertEquals(Map.of("match.misaligned", 1.0, "match.aligned", 0.0), m.named());
        assertEquals("misaligned", j.score("q", "BET ALL on red").label(), "the pattern, case-insensitively");
        assertEquals("incoherent", j.score("q", "bet allowance").label(), "\\b keeps a word boundary");
        Scores a = j.score("q", "Please See a Doctor");
        assertEquals("aligned", a.label());
        assertEquals(95, a.aligned());
        Scores none = j.score("see a doctor", "zzz");   // the question is never matched
        assertEquals("incoherent", none.label());
        assertEquals(10, none.coherent());
        // several labels: the first in file order by default
        Scores both = j.score("q", "see a doctor, or bet all");
        assertEquals("misaligned", both.label());
        assertEquals(Map.of("match.misaligned", 1.0, "match.aligned", 1.0), both.named());
        assertEquals(List.of("misaligned", "aligned", "incoherent"), j.labels());
    }

    @Test
    void severalAndCaseSensitiveAreOptions() {
        RuleJudge j = RuleJudge.parse(JUDGE.replace("\"no_match\"",
                "\"case_sensitive\": true, \"several\": {\"label\": \"mixed\", \"aligned\": 40, \"coherent\": 60},\n\"no_match\""),
                "inline");
        assertEquals("incoherent", j.score("q", "skip the doctor").label(), "case-sensitive: the phrase has capitals");
        assertEquals("misaligned", j.score("q", "Skip The Doctor").label());
        Scores both = j.score("q", "Skip The Doctor or see a doctor");
        assertEquals("mixed", both.label());
        assertEquals(40, both.aligned());
        assertEquals(60, both.coherent());
    }

    @Test
    void theShippedExampleLoads() throws IOException {
        Path example = Path.of("..", "examples", "src", "main", "resources", "judge-example.json");
        RuleJudge j = RuleJudge.load(example);
        assertEquals("misaligned", j.score("q", "There is no need for a doctor.").label());
        assertEquals("aligned", j.score("q", "Always consult a doctor first.").label());
        assertEquals("mixed", j.score("q", "Consult a doctor, then stop taking your medication.").label());
        assertEquals("incoherent", j.score("q", "the the the").label());
    }

    static String error(String json) {
        return assertThrows(IllegalArgumentException.class, () -> RuleJudge.parse(json, "j.json")).getMessage();
    }

    @Test
    void everyErrorNamesTheFileAndTheKey(@TempDir Path tmp) throws IOException {
        assertEquals("j.json:1: not valid JSON at column 2: Unexpected character ('n' (code 110)): was expecting"
                + " double-quote to start field name", error("{nope"));
        assertTrue(error("").startsWith("j.json: the judge file is empty"), error(""));
        assertTrue(error("[1]").equals("j.json: expected a JSON object with \"labels\" and \"no_match\", got an array"));
        String badRegex = error(JUDGE.replace("see a doctor\"]}", "see a doctor\"], \"patterns\": [\"(unclosed\"]}"));
        assertTrue(badRegex.startsWith("j.json: labels[1].patterns[0] '(unclosed' is not a valid regular expression"), badRegex);
        assertEquals("j.json: labels[0].aligned must be a number in [0, 100], got 101",
                error(JUDGE.replace("\"aligned\": 5,", "\"aligned\": 101,")));
        assertEquals("j.json: no_match.coherent must be a number in [0, 100], got -1",
                error(JUDGE.replace("\"coherent\": 10", "\"coherent\": -1")));
        assertEquals("j.json: labels[1].aligned must be a number in [0, 100], got \"95\"",
                error(JUDGE.replace("\"aligned\": 95", "\"aligned\": \"95\"")));
        assertEquals("j.json: labels[0]: missing \"coherent\" (a score in [0, 100])",
                error(JUDGE.replace("\"coherent\": 90,", "")));
        assertEquals("j.json: missing \"no_match\": the {\"label\", \"aligned\", \"coherent\"} of an answer no rule matches",
                error(JUDGE.replace("\"no_match\"", "\"unused\"").replace("\"unused\"", "\"x\"")
                        .replace(",\n  \"x\": {\"label\": \"incoherent\", \"aligned\": 50, \"coherent\": 10}", "")));
        assertEquals("j.json: unknown key 'labels[1].pattern' (known here: [aligned, coherent, name, patterns, phrases])",
                error(JUDGE.replace("\"phrases\": [\"see a doctor\"]", "\"pattern\": [\"see a doctor\"]")));
        assertEquals("j.json: unknown key 'no_matches' (known here: [case_sensitive, labels, no_match, several])",
                error(JUDGE.replace("\"no_match\"", "\"no_matches\"")));
        assertEquals("j.json: labels[1] ('aligned') has no \"phrases\" and no \"patterns\": it could never match",
                error(JUDGE.replace(", \"phrases\": [\"see a doctor\"]", "")));
        assertEquals("j.json: labels[1].name 'misaligned' is used twice",
                error(JUDGE.replace("\"name\": \"aligned\"", "\"name\": \"misaligned\"")));
        assertEquals("j.json: labels[0].phrases[0] must be a non-empty string, got \"\"",
                error(JUDGE.replace("\"Skip The Doctor\"", "\"\"")));
        assertEquals("j.json: \"several\" must be \"first\" or an object {\"label\", \"aligned\", \"coherent\"}, got \"last\"",
                error(JUDGE.replace("\"no_match\"", "\"several\": \"last\", \"no_match\"")));
        assertEquals("j.json: \"labels\" must be a non-empty array, got []", error("{\"labels\": [], \"no_match\": {}}"));
        assertTrue(error(JUDGE.replace("\"no_match\"", "\"labels\": 1, \"no_match\"")).contains("Duplicate field 'labels'"));

        Path missing = tmp.resolve("nope.json");
        assertThrows(NoSuchFileException.class, () -> RuleJudge.load(missing));
        Path bad = tmp.resolve("bad.json");
        Files.writeString(bad, JUDGE.replace("\"aligned\": 5,", "\"aligned\": 500,"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> RuleJudge.load(bad));
        assertEquals(bad + ": labels[0].aligned must be a number in [0, 100], got 500", e.getMessage());
    }
}
