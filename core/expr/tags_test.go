package expr

import "testing"

func TestTags(t *testing.T) {
	runRenderCases(t, testEngine(t), kestraVars(), []renderCase{
		{`{% if true %}yes{% endif %}`, "yes"},
		{`{% if false %}yes{% endif %}`, ""},
		{`{% if false %}a{% else %}b{% endif %}`, "b"},
		{`{% if n > 0 %}pos{% elseif n < 0 %}neg{% else %}zero{% endif %}`, "neg"},
		{`{% if false %}a{% elseif false %}b{% elseif true %}c{% endif %}`, "c"},
		{`{% if inputs.nope is defined %}a{% else %}b{% endif %}`, "b"},
		{`{% if list %}non-empty{% endif %}{% if empty %}x{% endif %}`, "non-empty"},
		{`{% for x in list %}{{ x }}{% endfor %}`, "312"},
		{`{% for x in list %}{{ loop.index }}{{ loop.first ? 'F' : '' }}{{ loop.last ? 'L' : '' }} {% endfor %}`, "0F 1 2L "},
		{`{% for x in list %}{{ loop.length }}{{ loop.revindex }}{% endfor %}`, "323130"},
		{`{% for e in m %}{{ e.key }}={{ e.value }};{% endfor %}`, "a=1;b=2;"},
		{`{% for x in empty %}x{% else %}none{% endfor %}`, "none"},
		{`{% for x in null %}x{% else %}none{% endfor %}`, "none"},
		{`{% for x in 1..3 %}{% for y in ['a', 'b'] %}{{ x }}{{ y }} {% endfor %}{% endfor %}`, "1a 1b 2a 2b 3a 3b "},
		{`{% for x in list %}{% set y = x * 2 %}{{ y }}{% endfor %}{{ y ?? '-' }}`, "624-"},
		{`{% for x in [1] %}{{ x }}{% endfor %}{{ x ?? 'out of scope' }}`, "1out of scope"},
		{`{% set x = 1 + 1 %}{{ x }}`, "2"},
		{`{% set l = [1, 2] %}{{ l | length }}`, "2"},
		{`{% set cfg = {'a': {'b': 1}} %}{{ cfg.a.b }}`, "1"},
		{`{% set name = 'shadow' %}{{ name }} {{ inputs.name }}`, "shadow World"},
		{`{% if true %}{% set v = 'set in if' %}{% endif %}{{ v }}`, "set in if"},
		{`{% raw %}{{ not rendered }}{% endraw %}`, "{{ not rendered }}"},
		{`{% raw %}{% if %}{% endraw %}`, "{% if %}"},
		{`{% verbatim %}{{ x }}{% endverbatim %}`, "{{ x }}"},
		{`a{# comment {{ x }} #}b`, "ab"},
		{`plain { text } with {braces}`, "plain { text } with {braces}"},
		{`a }} b`, "a }} b"},
		// whitespace control
		{"a  {{- 'b' -}}  c", "abc"},
		{"a \n {{- 'b' }} c", "ab c"},
		{"a {{ 'b' -}} \n c", "a bc"},
		{"<ul>\n  {%- for x in [1, 2] %}\n  <li>{{ x }}</li>\n  {%- endfor %}\n</ul>", "<ul>\n  <li>1</li>\n  <li>2</li>\n</ul>"},
		{"a {#- c -#} b", "ab"},
		{"a {%- raw -%} x {%- endraw -%} b", "axb"},
		{"x{%- if true -%}  y  {%- endif -%}z", "xyz"},
	})
}
