package org.lora4j.train.text;

import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.Objects;

/**
 * Reads the UTF-8 text files a user hands to lora4j (data, corpora, {@code config.json},
 * {@code tokenizer.json}). Java's own readers report a bad byte as {@code Input length = 1}, which names
 * neither the file nor the place; here every error names the file, the line and the byte offset.
 *
 * <p>Lines end at {@code \n}, {@code \r\n} or a lone {@code \r}, as {@link java.io.BufferedReader#readLine}
 * splits them, so line numbers are those an editor shows. A UTF-8 byte order mark at the start of a
 * file is dropped (Windows editors write one); any other encoding is refused, with a hint when the
 * file starts with a UTF-16 byte order mark.
 */
public final class TextFiles {

    /** Receives the lines of {@link #forEachLine}. */
    @FunctionalInterface
    public interface LineHandler {
        /**
         * @param number     1-based line number
         * @param byteOffset where the line starts in the file
         * @param text       the line without its line break
         */
        void line(int number, long byteOffset, String text) throws IOException;
    }

    /** Java arrays and strings cannot hold more. */
    private static final long MAX_WHOLE_FILE = Integer.MAX_VALUE - 64;

    private TextFiles() {
    }

    /**
     * The whole file as text; what it holds ("data file", "config file") goes into the errors.
     *
     * @throws NoSuchFileException when there is no such file
     * @throws IOException         when it is a directory, too large for one string, unreadable, or not
     *                             UTF-8 (the message names the file, line and byte offset)
     */
    public static String readUtf8(Path file, String what) throws IOException {
        requireRegularFile(file, what);
        long size = Files.size(file);
        if (size > MAX_WHOLE_FILE) {
            throw new IOException(file + ": " + size + " bytes is too large to read as one " + what);
        }
        byte[] bytes = Files.readAllBytes(file);
        return decode(file, bytes);
    }

    /** Decodes a whole file's bytes as {@link #readUtf8} does; {@code file} names it in errors. */
    public static String decode(Path file, byte[] bytes) throws IOException {
        int start = hasUtf8Bom(bytes, bytes.length) ? 3 : 0;
        CharsetDecoder decoder = strictDecoder();
        ByteBuffer in = ByteBuffer.wrap(bytes, start, bytes.length - start);
        CharBuffer out = CharBuffer.allocate(bytes.length - start);
        CoderResult r = decoder.decode(in, out, true);
        if (!r.isError()) {
            r = decoder.flush(out);
        }
        if (r.isError()) {
            int at = in.position();
            throw malformed(file, lineAt(bytes, at), at, bytes, at, Math.min(r.length(), bytes.length - at), bytes);
        }
        return out.flip().toString();
    }

    /**
     * Streams a file line by line, hashing every byte (byte order mark included) into {@code digest}
     * when it is not null. Memory holds one line at a time, so a file larger than any Java array works.
     *
     * @throws NoSuchFileException when there is no such file
     * @throws IOException         when it is a directory, unreadable, or not UTF-8 (the message names the
     *                             file, line and byte offset), or what the handler throws
     */
    public static void forEachLine(Path file, String what, MessageDigest digest, LineHandler handler)
            throws IOException {
        Objects.requireNonNull(handler, "handler");
        requireRegularFile(file, what);
        CharsetDecoder decoder = strictDecoder();
        byte[] head = null;    // the first bytes of the file, for the UTF-16 hint
        byte[] line = new byte[256];
        int length = 0;
        long lineStart = 0;
        long offset = 0;       // of the next byte read
        int number = 0;
        boolean afterCr = false;
        try (InputStream stream = Files.newInputStream(file)) {
            byte[] buffer = new byte[1 << 16];
            int n;
            while ((n = stream.read(buffer)) > 0) {
                if (digest != null) {
                    digest.update(buffer, 0, n);
                }
                if (head == null) {
                    head = Arrays.copyOf(buffer, Math.min(n, 4));
                }
                for (int i = 0; i < n; i++, offset++) {
                    byte b = buffer[i];
                    if (afterCr) {
                        afterCr = false;
                        if (b == '\n') {
                            lineStart = offset + 1;   // the \n of a \r\n: the line was already handed over
                            continue;
                        }
                    }
                    if (b == '\n' || b == '\r') {
                        number++;
                        handler.line(number, lineStart, decodeLine(file, number, lineStart, line, length, head, decoder));
                        length = 0;
                        lineStart = offset + 1;
                        afterCr = b == '\r';
                        continue;
                    }
                    if (length == line.length) {
                        if (length >= MAX_WHOLE_FILE / 2) {
                            throw new IOException(file + ":" + (number + 1) + ": the line starting at byte offset "
                                    + lineStart + " is too long to hold in memory");
                        }
                        line = Arrays.copyOf(line, length * 2);
                    }
                    line[length++] = b;
                }
            }
        }
        if (length > 0) {
            number++;
            handler.line(number, lineStart, decodeLine(file, number, lineStart, line, length, head, decoder));
        }
    }

    private static String decodeLine(Path file, int number, long lineStart, byte[] line, int length, byte[] head,
                                      CharsetDecoder decoder) throws IOException {
        int start = lineStart == 0 && hasUtf8Bom(line, length) ? 3 : 0;
        boolean ascii = true;
        for (int i = start; i < length && ascii; i++) {
            ascii = line[i] >= 0;
        }
        if (ascii) {
            return new String(line, start, length - start, StandardCharsets.ISO_8859_1);
        }
        decoder.reset();
        ByteBuffer in = ByteBuffer.wrap(line, start, length - start);
        CharBuffer out = CharBuffer.allocate(length - start);
        CoderResult r = decoder.decode(in, out, true);
        if (!r.isError()) {
            r = decoder.flush(out);
        }
        if (r.isError()) {
            int at = in.position();
            throw malformed(file, number, lineStart + at, line, at, Math.min(r.length(), length - at), head);
        }
        return out.flip().toString();
    }

    private static IOException malformed(Path file, int line, long offset, byte[] bytes, int at, int count,
                                         byte[] head) {
        StringBuilder hex = new StringBuilder();
        for (int i = 0; i < Math.max(1, count) && at + i < bytes.length; i++) {
            hex.append(i == 0 ? "" : " ").append(String.format("0x%02X", bytes[at + i] & 0xFF));
        }
        String hint = "";
        if (head != null && head.length >= 2 && ((head[0] & 0xFF) == 0xFF && (head[1] & 0xFF) == 0xFE
                || (head[0] & 0xFF) == 0xFE && (head[1] & 0xFF) == 0xFF)) {
            hint = " (the file starts with a UTF-16 byte order mark: save it as UTF-8)";
        }
        return new IOException(file + ":" + line + ": invalid UTF-8 at byte offset " + offset + " (" + hex
                + "); the file must be UTF-8 encoded" + hint);
    }

    /** 1-based line of byte {@code at}, counting \n, \r\n and lone \r as line breaks. */
    private static int lineAt(byte[] bytes, int at) {
        int line = 1;
        for (int i = 0; i < at; i++) {
            if (bytes[i] == '\n' || (bytes[i] == '\r' && (i + 1 >= bytes.length || bytes[i + 1] != '\n'))) {
                line++;
            }
        }
        return line;
    }

    private static boolean hasUtf8Bom(byte[] bytes, int length) {
        return length >= 3 && (bytes[0] & 0xFF) == 0xEF && (bytes[1] & 0xFF) == 0xBB && (bytes[2] & 0xFF) == 0xBF;
    }

    private static CharsetDecoder strictDecoder() {
        return StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
    }

    /** The SHA-256 of a file's bytes, in lower-case hex: how outputs record which input they read. */
    public static String sha256(Path file) throws IOException {
        try {
            return java.util.HexFormat.of().formatHex(
                    java.security.MessageDigest.getInstance("SHA-256").digest(java.nio.file.Files.readAllBytes(file)));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException("every JVM has SHA-256", e);
        }
    }

    /**
     * A value from a file, for an error message: in single quotes, with line breaks and other control
     * characters escaped as JSON escapes them, so the message stays one line (a fuzzing finding), and
     * shortened past 60 characters.
     */
    public static String quote(String value) {
        String s = value.length() > 60 ? value.substring(0, 57) + "..." : value;
        String json = com.fasterxml.jackson.databind.node.TextNode.valueOf(s).toString();
        return "'" + json.substring(1, json.length() - 1) + "'";
    }

    /**
     * The optimal string alignment distance of two strings: Levenshtein's edits plus a swap of two
     * neighbours counted as one ({@code lora_rnak} is one edit from {@code lora_rank}), for "did you mean"
     * suggestions on a mistyped key.
     */
    public static int editDistance(String a, String b) {
        int[][] d = new int[a.length() + 1][b.length() + 1];
        for (int i = 0; i <= a.length(); i++) {
            d[i][0] = i;
        }
        for (int j = 0; j <= b.length(); j++) {
            d[0][j] = j;
        }
        for (int i = 1; i <= a.length(); i++) {
            for (int j = 1; j <= b.length(); j++) {
                int cost = a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1;
                d[i][j] = Math.min(Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1), d[i - 1][j - 1] + cost);
                if (i > 1 && j > 1 && a.charAt(i - 1) == b.charAt(j - 2) && a.charAt(i - 2) == b.charAt(j - 1)) {
                    d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
                }
            }
        }
        return d[a.length()][b.length()];
    }

    /**
     * Where Jackson stopped reading: the exception's own location, else the parser's (Jackson 2.23 leaves
     * it out of some errors, such as more JSON after the first value).
     */
    public static JsonLocation jsonLocation(JsonProcessingException e) {
        if (e.getLocation() != null) {
            return e.getLocation();
        }
        if (e.getProcessor() instanceof JsonParser p && p.currentLocation() != null) {
            return p.currentLocation();
        }
        return JsonLocation.NA;
    }

    /**
     * A JSON parser's message as one short line: Jackson appends where an unclosed array or object
     * started, quoting the input ({@code [Source: ...]}), which may span lines and repeat the whole file
     * (a fuzzing finding); the caller names the file, line and column instead.
     */
    public static String jsonMessage(JsonProcessingException e) {
        String m = String.valueOf(e.getOriginalMessage());
        if (m.startsWith("Trailing token")) {
            // Jackson's own words name its classes and a feature flag
            return "more JSON after the first value (one value per line of JSONL, one per JSON file)";
        }
        int source = m.indexOf("[Source:");
        if (source >= 0) {
            int open = m.lastIndexOf(" (", source);
            m = m.substring(0, open >= 0 ? open : source);
        }
        m = m.replaceAll("\\s+", " ").strip();
        return m.length() > 200 ? m.substring(0, 197) + "..." : m;
    }

    /**
     * Refuses what cannot be read as a file, saying what it is instead. A directory is named as one
     * (reading it gives {@code Is a directory}, which does not say which path).
     */
    static void requireRegularFile(Path file, String what) throws IOException {
        Objects.requireNonNull(file, "file");
        if (Files.isDirectory(file)) {
            throw new IOException(file + " is a directory, not a " + what);
        }
        if (!Files.exists(file)) {
            throw new NoSuchFileException(file.toString(), null, "no such " + what);
        }
        if (!Files.isRegularFile(file)) {
            throw new IOException(file + " is not a regular file (a device or a pipe?), not a " + what);
        }
    }
}
