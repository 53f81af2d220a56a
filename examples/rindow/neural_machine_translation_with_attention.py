"""Rindow's samples/neural-machine-translation-with-attention.php, line by line in Python: a GRU
encoder-decoder with Attention translates French sentences into English, and greedy decoding
(one word at a time, shape inspection off) plots where the attention looks.

    python examples/rindow/neural_machine_translation_with_attention.py [--small] [--no-plot]

The sentence pairs are the Anki file of manythings.org, read from
$TAPEGRAD_DATASETS/fra-eng/fra.txt (default ~/.tapegrad/datasets; Rindow:
$RINDOW_NEURALNETWORKS_DATASETS), else extracted from fra-eng.zip there, which is downloaded
when missing. The weights are saved to (and, when the file exists, loaded from)
neural-machine-translation-with-attention.model in the current directory (Rindow: beside the
script). ``--small`` (for the tests) reads 400 pairs and trains 16-wide embeddings and 64 GRU
units for 20 epochs in batches of 8, from a fixed seed.

Where the port differs: NumPy plays the MatrixOperator, so the constructors take no ``$mo``;
EngFraDataset.convert (unused, and broken in the PHP) is left out; the model's ``predict``
keeps Rindow's signature (``attention_plot`` is filled in place); matplotlib's ``imshow`` puts
the first row at the top, so the y labels are not reversed as the PHP does for its plotter; the
figures are saved as PNG files. After the ten samples the port prints its masked word accuracy
on the validation pairs (``val_accuracy=``) and how many of the ten were translated exactly
(``exact=``).
"""

import os
import sys
import urllib.request
import zipfile
from pathlib import Path

import numpy as np

import tapegrad
from tapegrad import AbstractModel, Variable
from tapegrad.nn.data import Preprocessor, Tokenizer

small = "--small" in sys.argv
plot = "--no-plot" not in sys.argv
if small:
    tapegrad.set_seed(0)  # reproducible runs in the tests
rng = np.random.default_rng(0 if small else None)  # Rindow: $mo->random()


# Download the file
class EngFraDataset:
    base_url = "http://www.manythings.org/anki/"
    download_file = "fra-eng.zip"

    def __init__(self, input_tokenizer=None, target_tokenizer=None):
        self.dataset_dir = self.get_dataset_dir()
        self.dataset_dir.mkdir(parents=True, exist_ok=True)
        self.preprocessor = Preprocessor()

    def get_rindow_dataset_dir(self):
        data_dir = os.environ.get("TAPEGRAD_DATASETS")
        if not data_dir:
            data_dir = str(Path.home() / ".tapegrad" / "datasets")
        return Path(data_dir)

    def get_dataset_dir(self):
        return self.get_rindow_dataset_dir() / "fra-eng"

    def download(self, filename):
        file_path = self.dataset_dir / filename
        member_file = "fra.txt"
        path = self.dataset_dir / member_file
        if path.exists():  # (Rindow downloads the archive even when it is extracted)
            return path
        if not file_path.exists():
            self.console(f"Downloading {filename} ... ")
            try:
                urllib.request.urlretrieve(self.base_url + filename, file_path)
            except OSError as exc:
                file_path.unlink(missing_ok=True)
                sys.exit(f"cannot download {self.base_url + filename} ({exc}): put {filename} or its member "
                         f"{member_file} (English<TAB>French<TAB>attribution lines) in {self.dataset_dir}")
            self.console("Done\n")
        self.console(f"Extract to:{self.dataset_dir}\n")
        with zipfile.ZipFile(file_path) as archive:
            archive.extract(member_file, self.dataset_dir)
        self.console("Done\n")
        return path

    def preprocess_sentence(self, w):
        return "<start> " + w + " <end>"

    def create_dataset(self, path, num_examples):
        contents = Path(path).read_text(encoding="utf-8")
        lines = contents.strip().split("\n")
        del contents
        en_sentences = []
        sp_sentences = []
        for line in lines:
            if num_examples is not None:
                num_examples -= 1
                if num_examples < 0:
                    break
            blocks = [w.strip() for w in line.split("\t")]
            en = self.preprocess_sentence(blocks[0])
            sp = self.preprocess_sentence(blocks[1])
            en_sentences.append(en)
            sp_sentences.append(sp)
        return [en_sentences, sp_sentences]

    def tokenize(self, lang, num_words=None, tokenizer=None):
        if tokenizer is None:
            tokenizer = Tokenizer(
                num_words=num_words,
                filters="\"'#$%&()*+,-./:;=@[\\]^_`{|}~\t\n",
                specials="?.!,¿",
            )
        tokenizer.fit_on_texts(lang)
        sequences = tokenizer.texts_to_sequences(lang)
        tensor = self.preprocessor.pad_sequences(sequences, padding="post")
        return [tensor, tokenizer]

    def console(self, message):
        sys.stderr.write(message)

    def load_data(self, path=None, num_examples=None, num_words=None):
        if path is None:
            path = self.download(self.download_file)
        # creating cleaned input, output pairs
        targ_lang, inp_lang = self.create_dataset(path, num_examples)

        input_tensor, inp_lang_tokenizer = self.tokenize(inp_lang, num_words)
        target_tensor, targ_lang_tokenizer = self.tokenize(targ_lang, num_words)
        num_input = input_tensor.shape[0]
        choice = rng.choice(num_input, num_input, replace=False)
        input_tensor = self.shuffle(input_tensor, choice)
        target_tensor = self.shuffle(target_tensor, choice)

        return [input_tensor, target_tensor, inp_lang_tokenizer, targ_lang_tokenizer]

    def shuffle(self, tensor, choice):
        result = np.zeros_like(tensor)
        for i in range(tensor.shape[0]):
            result[i] = tensor[choice[i]]
        return result


class Encoder(AbstractModel):
    def __init__(self, builder, vocab_size, word_vect_size, units, input_length):
        super().__init__(builder)
        self.vocab_size = vocab_size
        self.word_vect_size = word_vect_size
        self.units = units
        self.embedding = builder.layers().Embedding(
            vocab_size, word_vect_size,
            input_length=input_length,
            mask_zero=True,
        )
        self.rnn = builder.layers().GRU(
            units,
            return_state=True, return_sequences=True,
            recurrent_initializer="glorot_uniform",
        )

    def call(self, inputs, initial_states=None, options=None):
        word_vect = self.embedding.forward(inputs)
        outputs, states = self.rnn.forward(word_vect, initial_states=initial_states)
        return [outputs, states]


class Decoder(AbstractModel):
    def __init__(self, builder, vocab_size, word_vect_size, units, input_length, target_length):
        super().__init__(builder)
        self.vocab_size = vocab_size
        self.word_vect_size = word_vect_size
        self.units = units
        self.input_length = input_length
        self.target_length = target_length
        self.embedding = builder.layers().Embedding(
            vocab_size, word_vect_size,
            input_length=target_length,
            mask_zero=True,
        )
        self.rnn = builder.layers().GRU(
            units,
            return_state=True, return_sequences=True,
            recurrent_initializer="glorot_uniform",
        )
        self.attention = builder.layers().Attention()
        self.concat = builder.layers().Concatenate()
        self.dense = builder.layers().Dense(vocab_size)
        self.attention_scores = None

    def call(self, inputs, initial_states=None, enc_outputs: Variable = None, return_attention_scores=None):
        x = self.embedding.forward(inputs)
        rnn_sequence, states = self.rnn.forward(x, initial_states=initial_states)

        context_vector = self.attention.forward(
            [rnn_sequence, enc_outputs],
            return_attention_scores=bool(return_attention_scores),
        )
        if isinstance(context_vector, (list, tuple)):
            context_vector, attention_scores = context_vector
            self.attention_scores = attention_scores
        outputs = self.concat.forward([context_vector, rnn_sequence])

        outputs = self.dense.forward(outputs)
        return [outputs, states]

    def get_attention_scores(self):
        return self.attention_scores


class Seq2seq(AbstractModel):
    def __init__(
        self,
        backend,
        builder,
        input_length=None,
        input_vocab_size=None,
        output_length=None,
        target_vocab_size=None,
        word_vect_size=8,
        units=256,
        start_voc_id=0,
        end_voc_id=0,
        plt=None,
    ):
        super().__init__(builder)
        self.encoder = Encoder(
            builder,
            input_vocab_size,
            word_vect_size,
            units,
            input_length,
        )
        self.decoder = Decoder(
            builder,
            target_vocab_size,
            word_vect_size,
            units,
            input_length,
            output_length,
        )
        self.start_voc_id = start_voc_id
        self.end_voc_id = end_voc_id
        self.input_length = input_length
        self.output_length = output_length
        self.units = units
        self.plt = plt

    def call(self, inputs, trues=None):
        enc_outputs, states = self.encoder.forward(inputs)
        outputs, dmy_status = self.decoder.forward(trues, initial_states=states, enc_outputs=enc_outputs)
        return outputs

    def shift_left_sentence(self, sentence):
        K = self.backend
        shape = sentence.shape
        batchs = shape[0]
        zero_pad = K.zeros([batchs, 1], sentence.dtype)
        seq = K.slice(sentence, [0, 1], [-1, -1])
        result = K.concat([seq, zero_pad], axis=1)
        return result

    def true_values_filter(self, trues):
        return self.shift_left_sentence(trues)

    def predict(self, inputs, **options):
        K = self.backend
        attention_plot = options["attention_plot"]
        inputs = K.array(inputs)

        if inputs.ndim != 2:
            raise ValueError("inputs shape must be 2D.")
        batchs = inputs.shape[0]
        if batchs != 1:
            raise ValueError("num of batch must be one.")
        status = [K.zeros([batchs, self.units])]
        enc_outputs, status = self.encoder.forward(inputs, initial_states=status)

        dec_inputs = K.array([[self.start_voc_id]], inputs.dtype)

        result = []
        self.set_shape_inspection(False)
        for t in range(self.output_length):
            predictions, status = self.decoder.forward(
                dec_inputs, initial_states=status,
                enc_outputs=enc_outputs, return_attention_scores=True)

            # storing the attention weights to plot later on
            scores = self.decoder.get_attention_scores()
            K.copy(K.ndarray(scores).reshape([self.input_length]), attention_plot[t])

            predicted_id = K.scalar(K.argmax(predictions[0][0]))

            result.append(predicted_id)

            if self.end_voc_id == predicted_id:
                break

            # the predicted ID is fed back into the model
            dec_inputs = K.array([[predicted_id]], inputs.dtype)

        self.set_shape_inspection(True)
        result = K.array([result], np.int32)
        return K.ndarray(result)

    def plot_attention(self, attention, sentence, predicted_sentence):
        plt = self.plt
        fig = plt.figure()
        fig.subplots_adjust(top=0.8)  # Rindow: 'figure.topMargin'=>100
        ax = fig.add_subplot(1, 1, 1)
        sentence_len = len(sentence)
        predict_len = len(predicted_sentence)
        image = np.zeros([predict_len, sentence_len], attention.dtype)
        for y in range(predict_len):
            for x in range(sentence_len):
                image[y][x] = attention[y][x]
        ax.imshow(image, cmap="viridis", origin="upper")

        ax.set_xticks(np.arange(len(sentence)), sentence, rotation=90)
        ax.xaxis.set_ticks_position("top")
        ax.set_yticks(np.arange(len(predicted_sentence)), predicted_sentence)
        return fig


class CustomLossFunction:
    def __init__(self, nn):
        self.nn = nn
        self.gradient = nn.gradient()
        self.loss_object = nn.losses.SparseCategoricalCrossentropy(
            from_logits=True, reduction="none",
        )

    def __call__(self, label, pred):
        g = self.gradient
        loss = self.loss_object.forward(label, pred)

        mask = g.cast(g.cast(label, dtype=np.bool_), dtype=np.float32)

        loss = g.mul(loss, mask)
        n = g.reduce_sum(mask)  # scalar in NDArray
        loss = g.reduce_sum(loss)  # scalar in NDArray
        loss = g.div(loss, n)
        return loss


class CustomAccuracy:
    def __init__(self, nn):
        self.backend = nn.backend()
        self.nn = nn

    def __call__(self, label, pred):
        K = self.backend
        pred = K.argmax(pred, axis=-1)  # convert to token id from predicts

        match = K.equal(label, pred)  # compare to trues (int32 == int32)
        mask = K.cast(label, dtype=np.bool_)  # make mask
        match = K.cast(match, dtype=np.float32)
        match = K.masking(mask, match)  # masking matching results

        sum_match = K.scalar(K.sum(match))
        n = K.scalar(K.sum(mask))
        if n == 0:
            accuracy = 0
        else:
            accuracy = sum_match / n
        return accuracy


num_examples = 20000  # 30000 50000
num_words = 1024  # None
epochs = 10
batch_size = 64
word_vect_size = 256
units = 1024
if small:
    num_examples, num_words, epochs, batch_size, word_vect_size, units = 400, None, 20, 8, 16, 64


nn = tapegrad.NeuralNetworks()
g = nn.gradient()
plt = None
if plot:
    try:
        import matplotlib
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib is not installed: no plots)")
        plot = False

dataset = EngFraDataset()

print("Generating data...")
input_tensor, target_tensor, inp_lang, targ_lang = dataset.load_data(None, num_examples, num_words)
val_size = len(input_tensor) // 10
train_size = len(input_tensor) - val_size
input_tensor_train = input_tensor[0:train_size]
target_tensor_train = target_tensor[0:train_size]
input_tensor_val = input_tensor[train_size:val_size + train_size]
target_tensor_val = target_tensor[train_size:val_size + train_size]

input_length = input_tensor.shape[1]
output_length = target_tensor.shape[1]
input_vocab_size = inp_lang.vocabulary_size()  # Rindow: numWords()
target_vocab_size = targ_lang.vocabulary_size()
corpus_size = len(input_tensor)

print(f"num_examples: {num_examples}")
print(f"num_words: {num_words}")
print(f"epoch: {epochs}")
print(f"batchSize: {batch_size}")
print(f"embedding_dim: {word_vect_size}")
print(f"units: {units}")
print(f"Total questions: {corpus_size}")
print(f"Input  word dictionary: {input_vocab_size}({len(inp_lang.index_word) + 1})")  # numWords(true)
print(f"Target word dictionary: {target_vocab_size}({len(targ_lang.index_word) + 1})")
print(f"Input length: {input_length}")
print(f"Output length: {output_length}")

print("device type: " + nn.device_type())
seq2seq = Seq2seq(
    nn.backend(),
    nn,
    input_length,
    input_vocab_size,
    output_length,
    target_vocab_size,
    word_vect_size,
    units,
    targ_lang.word_to_index("<start>"),
    targ_lang.word_to_index("<end>"),
    plt,
)
loss_func = CustomLossFunction(nn)
accuracy_func = CustomAccuracy(nn)

print("Compile model...")
seq2seq.compile(
    loss=loss_func,
    optimizer="adam",
    metrics={"loss": "loss", "accuracy": accuracy_func},
)

seq2seq.build(
    g.ArraySpec([1, input_length], dtype=np.int32),
    trues=g.ArraySpec([1, output_length], dtype=np.int32),
)  # just for summary
seq2seq.summary()

model_file_path = Path("neural-machine-translation-with-attention.model")

if model_file_path.exists():
    print("Loading model...")
    seq2seq.load_weights_from_file(model_file_path)
else:
    print("Train model...")
    history = seq2seq.fit(
        input_tensor_train,
        target_tensor_train,
        batch_size=batch_size,
        epochs=epochs,
        validation_data=[input_tensor_val, target_tensor_val],
        verbose=2 if small else 1,
        # callbacks=[checkpoint],
    )
    seq2seq.save_weights_to_file(model_file_path)

    if plot:
        plt.figure()
        for name in ("accuracy", "val_accuracy", "loss", "val_loss"):
            plt.plot(np.array(history[name]), label=name)
        plt.legend()
        plt.title("seq2seq-attention-translation")
        plt.savefig("neural-machine-translation-with-attention.png")

exact = 0
choice = rng.choice(corpus_size, 10, replace=False)
for k, idx in enumerate(choice):
    question = input_tensor[idx].reshape([1, input_length])
    attention_plot = np.zeros([output_length, input_length], np.float32)
    predict = seq2seq.predict(question, attention_plot=attention_plot)
    answer = target_tensor[idx].reshape([1, output_length])
    sentence = inp_lang.sequences_to_texts(question)[0]
    predicted_sentence = targ_lang.sequences_to_texts(predict)[0]
    target_sentence = targ_lang.sequences_to_texts(answer)[0]
    print(f"Input:   {sentence}")
    print(f"Predict: {predicted_sentence}")
    print(f"Target:  {target_sentence}")
    print()
    exact += target_sentence == "<start> " + predicted_sentence
    q = []
    for n in question[0]:
        if n == 0:
            break
        q.append(inp_lang.index_to_word(n))
    p = []
    for n in predict[0]:
        if n == 0:
            break
        p.append(targ_lang.index_to_word(n))
    if plot:
        seq2seq.plot_attention(attention_plot, q, p).savefig(f"neural-machine-translation-with-attention-{k}.png")
if plot and matplotlib.get_backend().lower() != "agg":
    plt.show()

# (not in the PHP) the word accuracy on the validation pairs and the exact translations above
loss, accuracy = seq2seq.evaluate(input_tensor_val, target_tensor_val, verbose=0)
print(f"val_accuracy={accuracy:.4f} exact={exact}/10")
