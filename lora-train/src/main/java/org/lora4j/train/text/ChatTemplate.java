package org.lora4j.train.text;

import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.LegacyOverrides;
import com.hubspot.jinjava.el.JinjavaInterpreterResolver;
import com.hubspot.jinjava.interpret.AutoCloseableSupplier;
import com.hubspot.jinjava.interpret.Context;
import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.tree.Node;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import jinjava.javax.el.CompositeELResolver;

import java.lang.reflect.Method;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.OptionalInt;
import java.util.Set;

/**
 * A chat format: how a conversation becomes the text a model reads, and which of its tokens a
 * supervised fine-tuning sample learns.
 *
 * <p>A model directory's format is the Jinja {@code chat_template} of its {@code tokenizer_config.json},
 * rendered as Hugging Face's {@code apply_chat_template} renders it ({@link #jinja}); a model with none
 * speaks {@link #chatml() ChatML}, {@code <|im_start|>{role}\n{content}<|im_end|>\n} per message with no
 * BOS token, as in Qwen's template and TRL's {@code setup_chat_format}. docs/chat-templates.md lists what
 * Jinja a template may use.
 *
 * <p>The loss mask follows the rendered text, not a model of the format: the ids of a sample are those
 * of the whole rendered conversation, and the targets of an assistant message are found by character
 * offsets. Its turn is the text between the rendering of the messages before it with the generation
 * prompt and the rendering through it; the targets are the tokens that start inside the turn, up to and
 * including the first end-of-turn token ({@link Tokenizer#endTokenIds()}). So the header the generation
 * prompt supplies ({@code <|im_start|>assistant\n}) is not a target, the answer and its
 * {@code <|im_end|>} are, and what follows the end token in the turn (ChatML's {@code \n}) is not: generation
 * stops at the end token, so the model never has to produce it. TRL's {@code assistant_only_loss} marks the
 * same span except that its ChatML training templates also mark that trailing {@code \n}, one token a turn.
 * A token that straddles the start of a turn (a BPE merge across the boundary) is not a target; one that
 * straddles its end is, if it starts inside.
 *
 * <p>Immutable and thread-safe.
 */
public final class ChatTemplate {

    static final String IM_START = "<|im_start|>";
    static final String IM_END = "<|im_end|>";
    static final String END_OF_TEXT = "<|endoftext|>";
    /** Where a reasoning model's thinking ends, in the answers of Qwen3's and DeepSeek-R1's templates. */
    private static final String THINK_END = "</think>";

    /**
     * ChatML as Jinja, the template lora4j writes into {@code tokenizer_config.json} for a model that
     * speaks it (the one of TRL's {@code setup_chat_format}); it renders exactly what {@link #chatml()} does.
     */
    public static final String CHATML_SOURCE = "{% for message in messages %}"
            + "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
            + "{% endfor %}"
            + "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

    /**
     * Strings that would end or restructure a turn if they appeared inside one, where the tokenizer has
     * them as special tokens: a message containing one is refused, as Hugging Face would encode it as the
     * special token (the template's own bos/eos/pad/unk tokens are refused too).
     */
    private static final List<String> STRUCTURAL_TOKENS = List.of(IM_START, IM_END, END_OF_TEXT,
            "<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
            "<|eom_id|>", "<start_of_turn>", "<end_of_turn>", "<bos>", "<eos>", "<s>", "</s>");

    /** The variables a template sees for the tokenizer's special tokens, as transformers names them. */
    static final List<String> SPECIAL_TOKEN_VARIABLES = List.of("bos_token", "eos_token", "pad_token", "unk_token");

    private static final ChatTemplate CHATML = new ChatTemplate(CHATML_SOURCE, "ChatML", Map.of(), true);

    private static final Jinjava JINJA = newEngine();

    private final String source;
    private final String name;
    private final Map<String, String> specialTokens;
    /** ChatML is rendered in Java: the same text, without the template engine's cost per sample. */
    private final boolean chatml;
    /** {@link #source} as Jinjava parses it ({@link JinjaPython#adaptSource}). */
    private final String adapted;
    /**
     * The parsed template, null for ChatML. Parsing is most of the cost of a render (4 to 8 times the
     * rendering of a parsed Llama 3.1 template), and a sample is rendered 2k + 1 times for k answers.
     */
    private final Node tree;

    private ChatTemplate(String source, String name, Map<String, String> specialTokens, boolean chatml) {
        this.source = source;
        this.name = name;
        this.specialTokens = specialTokens;
        this.chatml = chatml;
        this.adapted = chatml ? source : JinjaPython.adaptSource(source);
        this.tree = chatml ? null : parse();
    }

    /** ChatML, the template of a tokenizer whose model directory names none. */
    public static ChatTemplate chatml() {
        return CHATML;
    }

    /**
     * A Jinja chat template, such as the {@code chat_template} of a {@code tokenizer_config.json}.
     *
     * @param source        the Jinja text; {@link #CHATML_SOURCE} gives {@link #chatml()} itself
     * @param name          where it came from (a file path), named in every error
     * @param specialTokens the token strings the template may use, by variable name: {@code bos_token},
     *                      {@code eos_token}, {@code pad_token}, {@code unk_token}; a missing one is undefined
     * @throws IllegalArgumentException when the template does not parse, naming {@code name} and the line
     */
    public static ChatTemplate jinja(String source, String name, Map<String, String> specialTokens) {
        Objects.requireNonNull(source, "source must not be null");
        Objects.requireNonNull(name, "name must not be null");
        Objects.requireNonNull(specialTokens, "specialTokens must not be null");
        for (String key : specialTokens.keySet()) {
            if (!SPECIAL_TOKEN_VARIABLES.contains(key)) {
                throw new IllegalArgumentException(name + ": special token variable " + TextFiles.quote(key)
                        + " is not one of " + SPECIAL_TOKEN_VARIABLES);
            }
        }
        if (source.equals(CHATML_SOURCE)) {
            return CHATML;
        }
        ChatTemplate template = new ChatTemplate(source, name, Map.copyOf(specialTokens), false);
        // An error in an expression shows now, when the model directory is loaded, not at the first sample;
        // a template that refuses this small conversation (raise_exception) is not wrong for that.
        template.renderJinja(List.of(Message.user("hi"), Message.assistant("hello")), false, true);
        return template;
    }

    /** The Jinja text of this template ({@link #CHATML_SOURCE} for ChatML). */
    public String source() {
        return source;
    }

    /** Where this template came from: a file, or "ChatML". */
    public String name() {
        return name;
    }

    /**
     * The text of {@code messages}, as Hugging Face's {@code apply_chat_template(messages, tokenize=False,
     * add_generation_prompt=...)} renders it.
     *
     * @throws IllegalArgumentException when the template refuses the conversation ({@code raise_exception},
     *                                  such as a Mistral or Gemma template given roles that do not alternate)
     *                                  or fails; the message names the template and says why
     */
    public String render(List<Message> messages, boolean addGenerationPrompt) {
        Objects.requireNonNull(messages, "messages must not be null");
        for (int i = 0; i < messages.size(); i++) {
            int index = i;
            Objects.requireNonNull(messages.get(i), () -> "messages[" + index + "] must not be null");
        }
        if (chatml) {
            StringBuilder text = new StringBuilder();
            for (Message m : messages) {
                text.append(IM_START).append(m.role()).append('\n').append(m.content()).append(IM_END).append('\n');
            }
            if (addGenerationPrompt) {
                text.append(IM_START).append("assistant\n");
            }
            return text.toString();
        }
        return renderJinja(messages, addGenerationPrompt, false);
    }

    /**
     * A supervised fine-tuning sample: the ids of the rendered conversation, exactly
     * {@code tokenizer.encode(render(messages, false))}, with the loss on the assistant turns only (see the
     * class comment).
     *
     * @throws IllegalArgumentException when there is no assistant message (nothing to learn), a message
     *                                  contains a special-token string, the tokenizer lacks ChatML's tokens
     *                                  (for ChatML), or the template is not prefix-stable (the text before an
     *                                  assistant message changes when later messages follow)
     */
    public EncodedChat encode(Tokenizer tokenizer, List<Message> messages) {
        Objects.requireNonNull(tokenizer, "tokenizer must not be null");
        checkMessages(tokenizer, messages);
        if (messages.stream().noneMatch(Message::isAssistant)) {
            throw new IllegalArgumentException(
                    "a training conversation needs an assistant message, or no token is a target; roles were "
                            + messages.stream().map(Message::role).toList());
        }
        String full = render(messages, false);
        Encoding encoding = tokenizer.encodeWithOffsets(full);
        int[] ids = encoding.ids();
        int[] starts = encoding.starts();
        Set<Integer> endIds = new HashSet<>();
        for (int id : tokenizer.endTokenIds()) {
            endIds.add(id);
        }
        boolean[] mask = new boolean[ids.length];
        // Where the previous message's content ended in the rendering: a turn that has to be found by its
        // content (below) is looked for after it, so an answer that repeats an earlier message is not taken
        // for that message.
        int cursor = 0;
        for (int i = 0; i < messages.size(); i++) {
            Message m = messages.get(i);
            String content = m.content().strip();
            int found = content.isEmpty() ? -1 : full.indexOf(content, cursor);
            int think = content.lastIndexOf(THINK_END);
            if (found < 0 && m.isAssistant() && think >= 0) {
                // Reasoning templates (Qwen3, DeepSeek-R1) keep only the answer after </think> of an earlier turn.
                content = content.substring(think + THINK_END.length()).strip();
                found = content.isEmpty() ? -1 : full.indexOf(content, cursor);
            }
            if (!m.isAssistant()) {
                if (found >= 0) {
                    cursor = found + content.length();
                }
                continue;
            }
            String prefix = render(messages.subList(0, i), true);
            String through = render(messages.subList(0, i + 1), false);
            int from;
            int to;
            if (full.startsWith(prefix) && full.startsWith(through) && through.length() >= prefix.length()) {
                from = prefix.length();
                to = through.length();
            } else {
                // Not prefix-stable here (Qwen3 drops an earlier answer's reasoning and renders the last one
                // with an empty think block): the turn is the answer's own text where the whole conversation
                // renders it, through its end-of-turn token.
                if (found < 0) {
                    requirePrefix(prefix, full, i, "messages[0.." + i + ") with add_generation_prompt=true");
                    requirePrefix(through, full, i, "messages[0.." + i + "]");
                    throw notPrefixStable(i, "its content is not in the rendered conversation after the"
                            + " previous message");
                }
                from = found;
                to = full.length();
            }
            int marked = markTurn(ids, starts, mask, from, to, endIds);
            if (marked == 0) {
                throw new IllegalArgumentException(name + ": the chat template renders messages[" + i
                        + "] (assistant) as no tokens, so it has nothing to learn from it");
            }
            if (found >= 0) {
                cursor = Math.max(cursor, found + content.length());
            }
        }
        return new EncodedChat(ids, mask);
    }

    /**
     * The ids to generate the next assistant message from: {@code tokenizer.encode(render(messages, true))}.
     *
     * @throws IllegalArgumentException as {@link #encode} does for special-token strings and missing ChatML tokens
     */
    public int[] encodePrompt(Tokenizer tokenizer, List<Message> messages) {
        Objects.requireNonNull(tokenizer, "tokenizer must not be null");
        checkMessages(tokenizer, messages);
        return tokenizer.encode(render(messages, true));
    }

    /**
     * A plain-text sample ({@code {"text": ...}} lines): every token is a target, and
     * {@code <|endoftext|>} is appended, and is a target, when the tokenizer has it, so that the model
     * learns where a document ends, as in GPT-2-style pretraining on packed documents.
     */
    public static EncodedChat encodeText(Tokenizer tokenizer, String text) {
        Objects.requireNonNull(tokenizer, "tokenizer must not be null");
        Objects.requireNonNull(text, "text must not be null");
        if (text.isEmpty()) {
            throw new IllegalArgumentException("text must not be empty");
        }
        int[] body = tokenizer.encode(text);
        OptionalInt endOfText = tokenizer.specialTokenId(END_OF_TEXT);
        int[] ids = body;
        if (endOfText.isPresent()) {
            ids = Arrays.copyOf(body, body.length + 1);
            ids[body.length] = endOfText.getAsInt();
        }
        boolean[] mask = new boolean[ids.length];
        Arrays.fill(mask, true);
        return new EncodedChat(ids, mask);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof ChatTemplate other && source.equals(other.source)
                && specialTokens.equals(other.specialTokens) && chatml == other.chatml;
    }

    @Override
    public int hashCode() {
        return Objects.hash(source, specialTokens, chatml);
    }

    @Override
    public String toString() {
        return "ChatTemplate[" + name + "]";
    }

    /**
     * Marks the tokens that start in {@code [from, to)} as targets, through the first end-of-turn token;
     * returns how many it marked.
     */
    private static int markTurn(int[] ids, int[] starts, boolean[] mask, int from, int to, Set<Integer> endIds) {
        int t = 0;
        while (t < ids.length && starts[t] < from) {
            t++;
        }
        int marked = 0;
        for (; t < ids.length && starts[t] < to; t++) {
            mask[t] = true;
            marked++;
            if (endIds.contains(ids[t])) {
                break;
            }
        }
        return marked;
    }

    private void requirePrefix(String part, String full, int assistant, String what) {
        if (!full.startsWith(part)) {
            int at = 0;
            while (at < part.length() && at < full.length() && part.charAt(at) == full.charAt(at)) {
                at++;
            }
            throw notPrefixStable(assistant, "rendering " + what + " gives " + excerpt(part, at)
                    + " at char " + at + " where the whole conversation has " + excerpt(full, at));
        }
    }

    private IllegalArgumentException notPrefixStable(int assistant, String detail) {
        return new IllegalArgumentException(name + ": the chat template is not prefix-stable, so the tokens of"
                + " messages[" + assistant + "] (assistant) cannot be found in the rendered conversation: "
                + detail);
    }

    private static String excerpt(String s, int at) {
        if (at >= s.length()) {
            return "the end of the text";
        }
        return TextFiles.quote(s.substring(at, Math.min(s.length(), at + 30)));
    }

    private void checkMessages(Tokenizer tokenizer, List<Message> messages) {
        Objects.requireNonNull(messages, "messages must not be null");
        if (chatml) {
            requireSpecial(tokenizer, IM_START);
            requireSpecial(tokenizer, IM_END);
        }
        Set<String> reserved = new LinkedHashSet<>(STRUCTURAL_TOKENS);
        reserved.addAll(specialTokens.values());
        reserved.removeIf(token -> token.isEmpty() || tokenizer.specialTokenId(token).isEmpty());
        for (int i = 0; i < messages.size(); i++) {
            Message m = messages.get(i);
            int index = i;
            Objects.requireNonNull(m, () -> "messages[" + index + "] must not be null");
            for (String token : reserved) {
                if (m.content().contains(token)) {
                    throw new IllegalArgumentException("messages[" + i + "] (" + m.role()
                            + ") contains the special token " + token + " in its content");
                }
            }
        }
    }

    private static void requireSpecial(Tokenizer tokenizer, String token) {
        if (tokenizer.specialTokenId(token).isEmpty()) {
            throw new IllegalArgumentException(
                    "ChatML needs " + token + " as one special token, and " + tokenizer + " has none");
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Jinja

    /**
     * transformers renders templates with {@code trim_blocks} and {@code lstrip_blocks}; the legacy overrides
     * make Jinjava strip white space around {@code {{-}}, {@code -}}} and {@code {#-} as Jinja does (without
     * them Qwen's and Llama's templates keep their indentation) and give filters Jinja's precedence.
     * Nested interpretation is off: by default Jinjava renders the output of an expression again, so a
     * message containing "{{ x }}" or "{% if %}" would be read as template code. Python's string methods
     * come from {@link JinjaPython}, ahead of Jinjava's read-only resolver (its default).
     */
    private static Jinjava newEngine() {
        CompositeELResolver resolver = new CompositeELResolver();
        resolver.add(new JinjaPython());
        resolver.add(JinjavaInterpreterResolver.DEFAULT_RESOLVER_READ_ONLY);
        JinjavaConfig config = JinjavaConfig.newBuilder()
                .withTrimBlocks(true)
                .withLstripBlocks(false)   // done by JinjaPython.adaptSource: Jinjava's strips too much
                .withNestedInterpretationEnabled(false)
                .withElResolver(resolver)
                .withLegacyOverrides(LegacyOverrides.newBuilder()
                        .withParseWhitespaceControlStrictly(true)
                        .withUseTrimmingForNotesAndExpressions(true)
                        .withUseNaturalOperatorPrecedence(true)
                        .withEvaluateMapKeys(true)
                        .withIterateOverMapKeys(true)
                        .withKeepNullableLoopValues(true)
                        .withAllowAdjacentTextNodes(true)
                        .withWhitespaceRequiredWithinTokens(false)
                        .build())
                .build();
        Jinjava jinjava = new Jinjava(config);
        try {
            Method raise = ChatTemplate.class.getDeclaredMethod("raiseException", String.class);
            raise.setAccessible(true);
            jinjava.getGlobalContext().registerFunction(new ELFunctionDefinition("", "raise_exception", raise));
        } catch (NoSuchMethodException e) {
            throw new IllegalStateException(e);
        }
        // strftime_now is left undefined on purpose: templates that use it (Llama 3.2) fall back to their
        // fixed date, so a sample's tokens do not depend on the day it was encoded.
        return jinjava;
    }

    /** A template's {@code raise_exception(message)}: it refuses the conversation. */
    private static String raiseException(String message) {
        throw new Refused(message);
    }

    /** Carries a template's refusal out of the engine, which wraps it. */
    private static final class Refused extends RuntimeException {
        Refused(String message) {
            super(message, null, false, false);
        }
    }

    /** Parses {@link #adapted}; a syntax error is refused with the template's name and line. */
    private Node parse() {
        JinjavaInterpreter interpreter = JINJA.newInterpreter();
        Node parsed;
        try (AutoCloseableSupplier.AutoCloseableImpl<JinjavaInterpreter> current =
                     JinjavaInterpreter.closeablePushCurrent(interpreter).get()) {
            parsed = interpreter.parse(adapted);
        }
        checkErrors(interpreter.getErrors(), List.of(), true);
        return parsed;
    }

    /**
     * Renders the parsed tree in a fresh interpreter. Renders of one template are serialised: Jinjava does
     * not document its parsed nodes as safe to render from two threads at once.
     */
    private String renderJinja(List<Message> messages, boolean addGenerationPrompt, boolean syntaxOnly) {
        Map<String, Object> bindings = new HashMap<>(specialTokens);
        List<Map<String, Object>> list = new ArrayList<>(messages.size());
        for (Message m : messages) {
            Map<String, Object> message = new LinkedHashMap<>();
            message.put("role", m.role());
            message.put("content", m.content());
            list.add(message);
        }
        bindings.put("messages", list);
        bindings.put("add_generation_prompt", addGenerationPrompt);
        JinjavaInterpreter interpreter = new JinjavaInterpreter(JINJA, new Context(JINJA.getGlobalContext(), bindings),
                JINJA.getGlobalConfig());
        String output;
        synchronized (this) {
            try (AutoCloseableSupplier.AutoCloseableImpl<JinjavaInterpreter> current =
                     JinjavaInterpreter.closeablePushCurrent(interpreter).get()) {
                output = interpreter.render(tree);
            }
        }
        checkErrors(interpreter.getErrors(), messages, syntaxOnly);
        return output;
    }

    private void checkErrors(List<TemplateError> errors, List<Message> messages, boolean syntaxOnly) {
        for (TemplateError error : errors) {
            if (error.getSeverity() != TemplateError.ErrorType.FATAL) {
                continue;
            }
            Refused refused = refusal(error.getException());
            if (refused != null) {
                if (syntaxOnly) {
                    continue;
                }
                throw new IllegalArgumentException(name + ": the chat template refuses the conversation (roles "
                        + messages.stream().map(Message::role).toList() + "): " + refused.getMessage());
            }
            throw new IllegalArgumentException(name + ": line " + error.getLineno()
                    + " of the chat template: " + error.getMessage());
        }
    }

    private static Refused refusal(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof Refused r) {
                return r;
            }
        }
        return null;
    }
}
