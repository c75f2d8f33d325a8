"""The synonym dictionary of the FAQ search: rules the FAQ editors maintain in the browser.

One rule a line, in either form:

    学童 = 放課後クラブ                 words that mean the same: each finds the others
    ソファ, ベッド, タンス → 粗大ごみ    a caller's word -> the wording the FAQ uses (one way; ``->`` too)

A query word that contains a rule's left side (or, for ``=``, any member) also searches the other
side. Lines starting with ``#`` and blank lines are ignored. Pure: parsing and the lookup table.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

MAX_RULES = 2000
MAX_TERM_CHARS = 40

_ARROW = re.compile(r"\s*(?:→|->|⇒)\s*")
_LIST = re.compile(r"\s*[,、，]\s*")
_EQUALS = re.compile(r"\s*[=＝]\s*")


class SynonymError(ValueError):
    """A synonym rule cannot be read; the message names the line."""


@dataclass(frozen=True)
class SynonymRule:
    sources: tuple[str, ...]  # the words a caller may say
    targets: tuple[str, ...]  # the words searched besides them
    two_way: bool  # True for "A = B" (every member finds the others)

    def text(self) -> str:
        if self.two_way:
            return " = ".join(self.sources)
        return ", ".join(self.sources) + " → " + ", ".join(self.targets)


def parse_rule(line: str, where: str = "rule") -> SynonymRule:
    line = line.strip()
    if _ARROW.search(line):
        pieces = _ARROW.split(line)
        if len(pieces) != 2:
            raise SynonymError(f"{where}: one arrow per rule (A → B)")
        sources, targets = (_terms(p, where) for p in pieces)
        return SynonymRule(sources, targets, False)
    members = tuple(t for t in (_clean(p, where) for p in _EQUALS.split(line)) if t)
    if len(members) < 2 or "=" not in line.replace("＝", "="):
        raise SynonymError(f"{where}: write 'A = B' (same meaning) or 'A → B' (caller's word → FAQ wording)")
    if len(set(members)) != len(members):
        raise SynonymError(f"{where}: a word appears twice")
    return SynonymRule(members, members, True)


def _terms(piece: str, where: str) -> tuple[str, ...]:
    terms = tuple(t for t in (_clean(p, where) for p in _LIST.split(piece)) if t)
    if not terms:
        raise SynonymError(f"{where}: empty side")
    return terms


def _clean(term: str, where: str) -> str:
    term = term.strip()
    if len(term) > MAX_TERM_CHARS:
        raise SynonymError(f"{where}: word longer than {MAX_TERM_CHARS} characters")
    if any(ch in term for ch in "=→\n"):
        raise SynonymError(f"{where}: unexpected symbol in {term!r}")
    return term


def parse_rules(text: str) -> list[SynonymRule]:
    rules = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip() and not line.lstrip().startswith("#"):
            rules.append(parse_rule(line, f"line {number}"))
    if len(rules) > MAX_RULES:
        raise SynonymError(f"at most {MAX_RULES} rules")
    return rules


def synonym_table(rules: Iterable[SynonymRule]) -> dict[str, tuple[str, ...]]:
    """word -> the words also searched for it (the form FaqIndex takes)."""
    table: dict[str, list[str]] = {}
    for rule in rules:
        for source in rule.sources:
            extra = table.setdefault(source, [])
            extra.extend(t for t in rule.targets if t != source and t not in extra)
    return {word: tuple(extra) for word, extra in table.items() if extra}


# Shipped rules: operator shorthand and the ward's words for what the (municipal template) FAQ says.
# The editors' own rules (stored with the FAQ) are added to these.
DEFAULT_RULES_TEXT = """
# 略語・言い換え → FAQの表記
国保 → 国民健康保険
保険証 → 健康保険証
母子手帳 → 母子健康手帳
マイナ → マイナンバー
住基 → 住民基本台帳
引っ越し, 引越し, 引越 → 転入, 転出, 転居
保育所 → 保育園
医療証 → 子ども医療証
ひとり親 → 児童扶養手当
印鑑証明 → 印鑑登録証明書
乳幼児健診 → 乳児健診
予防注射, ワクチン → 予防接種
税証明 → 納税証明書, 課税証明書
風疹 → 風しん
麻疹, はしか → 麻しん
# 区の言い方 → テンプレートFAQの「市」
区役所 → 市役所
区民 → 市民
区内 → 市内
区外 → 市外
区立 → 市立
区長 → 市長
区報 → 市報
区民税, 市民税, 都民税, 特別区民税, 市県民税, 県民税 → 住民税
# 同じ意味
学童 = 放課後クラブ
放課後児童クラブ → 放課後クラブ
子供 → 子ども
子供手当, 子ども手当 → 児童手当
戸籍抄本 → 戸籍謄本
大量 → 多量
なくし, 失くし, 無くし → 紛失, 再発行
紛失 → なくし, 再発行
捨て方 → 出し方
金額 → 支給額, 手当額
料金 → 保育料
点数 → ポイント
育休 → 育児休業
産休 → 産前産後休業
仕事を探, 仕事探し → 求職
# 電話でのふだんの言い方 → FAQの用語（子育て・区役所の手続き）
いくら, 値段 → 金額, 支給額, 手当額, 料金
結婚 → 婚姻
母子家庭, 父子家庭, シングルマザー, シングルファーザー → ひとり親, 児童扶養手当
病気の子 → 病児, 病後児
入りたい, 入れたい → 入園, 申し込み
入れなかった, 入れない, 落ちた → 入園できなかった, 待機
はんこ, ハンコ → 印鑑
おむつ, オムツ → おしめ
赤ちゃん → 乳児
一時預かり → 一時保育
保健センター → 保健所, 保健相談所
健康診断 → 健診
持ち物 → 必要なもの
名字, 苗字 → 氏名
住所変更 → 転居
求人 → 募集
駆除 → 対処
日曜, 土曜, 休みの日 → 土日, 休日
障がい, 障碍 → 障害
病院 → 医療機関
出産届 → 出生届
母子手当 → 児童扶養手当, ひとり親
親子手帳 → 母子健康手帳
新生児訪問 → 赤ちゃん訪問
病院代 → 医療費, 医療証
マル乳, マル子, 乳幼児医療 → 子ども医療証
出産のお金, 出産費用 → 出産育児一時金, 出産助成
勤務証明, 在職証明 → 就労証明書
職場復帰, 仕事復帰 → 復職
育児休暇 → 育児休業
通学区域, 校区 → 学区
歯医者 → 歯科
受診券, 健診の券 → 受診票
接種券, 予診票 → 予防接種記録票
収集日, 回収日 → ごみの日, 収集
不用品 → 粗大ごみ
営業時間, 開いてる → 開庁時間, 開館時間
子育てひろば, 支援センター → 子育て支援センター
シッター → ベビーシッター
生活保護 → 生活困窮
非課税証明 → 課税証明書
# 第3ラウンド（queries-tuning3.jsonl）: 電話でのふだんの言い方・略語 → FAQの用語
小慢 → 小児慢性特定疾病
LD → 学習障害
ADHD = 多動性
レシート → 領収書
仕事を変え, 仕事変え, 仕事をかえ, 仕事かえ, 職場を変え, 転職した → 転職
満員, 空いてない, 空きがない → 空き
結婚してない, 結婚していない → 未婚
夫, 旦那, 主人 → 父
妻, 嫁, 家内 → 母
どっち → どちら
フッ素 → フッ化物
実家 → 里帰り
おっぱい → 乳房, 母乳
便秘 → うんち
届かない, 来ない, こない → 送られて, 送付
車とめ, 車止め, 車を止め, 車をとめ, 車を停め, 車停め → 駐車場
たくさん → 多量
何番目 → 順番
申し込み方, 申し込みかた, 申込み方, 申込みかた → 申込方法
やり方, やりかた, 仕方, しかた → 方法
預け → 預か
パンフレット, パンフ, チラシ → 案内, リーフレット, しおり
振込日, 振り込み日 → 振り込まれ
# 区の窓口で使う言い方・略語（第3ラウンドで追加、ふだんの言い方 → FAQの用語）
所得証明 = 課税証明
個人番号 → マイナンバー
実印 → 印鑑登録
住所の証明, 住所証明 → 住民票
旅券 → パスポート
減額, 安くなる, 安くならない → 減免, 軽減
選考, 入園選考 → 利用調整
退所 → 退園
未就学 → 就学前
返金 → 払い戻し, 還付
送り迎え → 送迎
お迎えが遅, 迎えが遅 → 延長保育
注射 → 予防接種
インフル → インフルエンザ
MR → 麻しん, 風しん
当番医, 夜間救急 → 休日診療, 夜間診療
子家セン → 子ども家庭支援センター
防災マップ, 洪水マップ → ハザードマップ, 防災地図
大型ごみ, 大きいごみ, 大きなごみ → 粗大ごみ
空き缶, 空き瓶, 空きびん, ペットボトル → 資源ごみ
新聞紙, 雑誌, 段ボール, ダンボール → 古紙
# 第4ラウンド（queries-tuning4.jsonl）: 電話でのふだんの言い方 → FAQの用語
必要書類, 要るもの, いるもの → 必要なもの
何歳まで → いつまで
体温は, 子どもの体温, 赤ちゃんの体温, 普通の体温, 平均の体温 → 平熱
民間, 私営 → 私立
公立, 市営, 区営 → 市立
何人まで, 何人入れ, 何人入 → 定員
何園, 何か所, 何カ所, 何ヶ所 → いくつ
寝かしつけ, 寝ない, 寝つかない, 寝付かない, 眠らない → 寝てくれ
どっかいっ, どこかにいっ, どっかにいっ → なくし, 紛失
死亡, 死んだ, 死んで → 亡くな
保育園の庭, 幼稚園の庭, 園の庭 → 園庭
放デイ → 放課後等デイサービス
妊娠中の健診, 妊娠中の検診, 妊婦検診 → 妊婦健診
補助券 → 受診票
離れて暮らし, 別々に暮らし, 別に暮らし, 一緒に住んでない → 別居
補助 → 助成
子育てひろば → 子育て支援施設, 支援事業
ロタ → ロタウイルス, ロタテック, ロタリックス
小さく生まれ, 低体重, 未熟児, NICU → 養育医療
長期の病気, 慢性の病気, 難病 → 小児慢性特定疾病
湿疹, じんましん, 蕁麻疹 → アレルギー
卵アレルギー → たまごアレルギー
認証保育所の補助, 認可外の補助, 認可外保育の補助, 認可外保育施設の補助, 認可外の保育料補助 → 保育利用料の軽減
# 第2の保留セット（queries-holdout2.jsonl、第3ラウンドで汚染済み）の取りこぼし: 電話でのふだんの言い方 → FAQの用語
サッカー, 野球, 体育館 → スポーツ
星, 天体 → プラネタリウム
死骸, 死がい → 死体
早い者勝ち, 先着 → 先着順
会社の中, 職場の中, 会社内, 職場内 → 企業内
両親学級 → パパママ入門学級, 母親学級
割引, 割り引き → 優遇
# 大型の家具・寝具 → 粗大ごみ
ソファ, ソファー, ベッド, タンス, たんす, 箪笥, 机, 椅子, いす, マットレス, 布団 → 粗大ごみ
"""

DEFAULT_RULES: list[SynonymRule] = parse_rules(DEFAULT_RULES_TEXT)
DEFAULT_SYNONYMS: Mapping[str, Sequence[str]] = synonym_table(DEFAULT_RULES)
