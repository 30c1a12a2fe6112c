package mail

import (
	"bufio"
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/template"
)

// The code email's two parts, as files: the built-in ones are embedded, an
// operator's are in Config.TemplateDir.
const (
	TextTemplateFile = "code.txt"
	HTMLTemplateFile = "code.html"
)

//go:embed templates/code.txt templates/code.html
var templateFS embed.FS

// builtinTemplates are the templates in templates/, parsed once: constants
// of the program.
var builtinTemplates = &templates{
	text: template.Must(template.ParseFS(templateFS, "templates/"+TextTemplateFile)),
	html: htmltemplate.Must(htmltemplate.ParseFS(templateFS, "templates/"+HTMLTemplateFile)),
}

// templates are the text and HTML templates of the code email.
type templates struct {
	text *template.Template
	html *htmltemplate.Template
}

// templateData is what the templates see.
type templateData struct {
	AppName  string // Config.AppName: "otplogin", or the operator's product
	Subject  string
	Code     string
	Expires  string // "14:07 UTC"
	ValidFor string // "5 minutes"
}

// maxTemplateBytes bounds a template file: an email template is a few KiB,
// and a bigger file is a mistake (a log, a binary) rather than a template.
const maxTemplateBytes = 256 << 10

// loadTemplates reads the templates an operator keeps in dir: code.txt
// and code.html each replace the built-in one when present, and at least
// one must be. Each is checked as check describes.
func loadTemplates(dir string) (*templates, error) {
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a folder", dir)
	}
	t := *builtinTemplates
	found := 0
	for _, name := range []string{TextTemplateFile, HTMLTemplateFile} {
		path := filepath.Join(dir, name)
		src, err := readTemplate(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		found++
		// The template is named by its path, so that the parser's errors
		// ("template: /path/code.html:12: ...") name the file.
		if name == TextTemplateFile {
			t.text, err = template.New(path).Option("missingkey=error").Parse(src)
		} else {
			t.html, err = htmltemplate.New(path).Option("missingkey=error").Parse(src)
		}
		if err != nil {
			return nil, templateError(err)
		}
	}
	if found == 0 {
		return nil, fmt.Errorf("%s holds neither %s nor %s", dir, TextTemplateFile, HTMLTemplateFile)
	}
	if err := t.check(); err != nil {
		return nil, err
	}
	return &t, nil
}

func readTemplate(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxTemplateBytes+1))
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	if len(b) > maxTemplateBytes {
		return "", fmt.Errorf("%s: larger than %d KiB, which no email template needs", path, maxTemplateBytes>>10)
	}
	return string(b), nil
}

// sample is what check renders the templates with: values no template
// would show by chance, and an application name that must come out
// escaped in HTML.
var sample = templateData{
	AppName:  `<Acme & "Co">`,
	Subject:  "Your <Acme> verification code",
	Code:     "4829163",
	Expires:  "23:41 UTC",
	ValidFor: "17 minutes",
}

// check renders both templates once with sample data: each must run, show
// the code and when it expires (the time or how long it is valid), the
// text must have the code on a line of its own (where mail clients offer to
// copy it, and where CodeFromMessage finds it), and the HTML must show the
// application name escaped. html/template escapes whatever it shows;
// rendering also finds what its escaper refuses (a value in an ambiguous
// context), which parsing does not.
func (t *templates) check() error {
	var text, html bytes.Buffer
	if err := t.text.Execute(&text, sample); err != nil {
		return templateError(err)
	}
	if err := t.html.Execute(&html, sample); err != nil {
		return templateError(err)
	}
	for _, part := range []struct {
		name string
		out  string
	}{{t.text.Name(), text.String()}, {t.html.Name(), html.String()}} {
		if !strings.Contains(part.out, sample.Code) {
			return fmt.Errorf("%s does not show the code ({{.Code}})", part.name)
		}
		if !strings.Contains(part.out, sample.Expires) && !strings.Contains(part.out, sample.ValidFor) {
			return fmt.Errorf("%s does not say when the code expires ({{.ValidFor}} or {{.Expires}})", part.name)
		}
	}
	if !hasLine(text.String(), sample.Code) {
		return fmt.Errorf("%s must show the code ({{.Code}}) on a line of its own", t.text.Name())
	}
	if strings.Contains(html.String(), sample.AppName) {
		return fmt.Errorf("%s shows the application name unescaped", t.html.Name())
	}
	return nil
}

// hasLine reports whether some line of s is want, spaces aside.
func hasLine(s, want string) bool {
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == want {
			return true
		}
	}
	return false
}

// templateError is a template's parse or render error without the
// package's prefix. text/template's errors are plain text, "template:
// NAME:LINE: what", with no type to read the line from; html/template's
// start "html/template:NAME:LINE:COL:". The templates are named by their
// paths, so what is left starts with the file and the line.
func templateError(err error) error {
	msg := err.Error()
	for _, p := range []string{"template: ", "html/template:"} {
		if rest, ok := strings.CutPrefix(msg, p); ok {
			return errors.New(rest)
		}
	}
	return err
}
