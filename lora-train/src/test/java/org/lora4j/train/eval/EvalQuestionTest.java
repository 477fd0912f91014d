package org.lora4j.train.eval;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.lora4j.train.text.Message;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** The questions file: both line forms, and an error naming the file and line for each kind of bad line. */
class EvalQuestionTest {
    @Test
    void readsBothForms(@TempDir Path tmp) throws IOException {
        Path f = tmp.resolve("q.jsonl");
        Files.writeString(f, "{\"id\": \"a\", \"question\": \"Why?\"}\r\n\n"
                + "{\"id\": 7, \"messages\": [{\"role\": \"system\", \"content\": \"Be kind.\"}, {\"role\": \"user\", \"content\": \"How?\"}]}");
        List<EvalQuestion> qs = EvalQuestion.load(f);
        assertEquals(2, qs.size());
        assertEquals("a", qs.get(0).id());
        assertEquals(List.of(Message.user("Why?")), qs.get(0).messages());
        assertEquals("7", qs.get(1).id());
        assertEquals("How?", qs.get(1).question());
        assertEquals(Message.system("Be kind."), qs.get(1).messages().get(0));
    }

    static String error(Path tmp, String line) throws IOException {
        Path f = tmp.resolve("bad.jsonl");
        Files.writeString(f, "{\"id\": \"ok\", \"question\": \"fine\"}\n" + line + "\n");
        return assertThrows(IllegalArgumentException.class, () -> EvalQuestion.load(f)).getMessage()
                .replace(f.toString(), "bad.jsonl");
    }

    @Test
    void badLinesAreNamed(@TempDir Path tmp) throws IOException {
        assertEquals("bad.jsonl:2: not valid JSON at column 2: Unexpected character ('x' (code 120)): was expecting"
                + " double-quote to start field name", error(tmp, "{x"));
        assertEquals("bad.jsonl:2: expected a JSON object {\"id\": ..., \"question\": ...}, got '[1]'", error(tmp, "[1]"));
        assertEquals("bad.jsonl:2: \"id\" must be a non-blank string or an integer, got none", error(tmp, "{\"question\": \"q\"}"));
        assertEquals("bad.jsonl:2: \"id\" must be a non-blank string or an integer, got '1.5'",
                error(tmp, "{\"id\": 1.5, \"question\": \"q\"}"));
        assertEquals("bad.jsonl:2: give exactly one of \"question\" (a string) and \"messages\" (a list)",
                error(tmp, "{\"id\": \"b\", \"question\": \"q\", \"messages\": []}"));
        assertEquals("bad.jsonl:2: \"question\" must be a non-blank string, got ' '", error(tmp, "{\"id\": \"b\", \"question\": \" \"}"));
        assertEquals("bad.jsonl:2: question 'b': the messages must end with a user message, got a last message of role 'assistant'",
                error(tmp, "{\"id\": \"b\", \"messages\": [{\"role\": \"user\", \"content\": \"q\"}, {\"role\": \"assistant\", \"content\": \"a\"}]}"));
        assertEquals("bad.jsonl:2: messages[0]: role must be one of system, user, assistant; got 'tool'",
                error(tmp, "{\"id\": \"b\", \"messages\": [{\"role\": \"tool\", \"content\": \"q\"}]}"));
        assertEquals("bad.jsonl:2: question id 'ok' is already used on line 1", error(tmp, "{\"id\": \"ok\", \"question\": \"again\"}"));
    }
}
