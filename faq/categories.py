"""Pure: the IVR category codes, their Japanese labels, and which FAQ categories each covers
(the screen pop's suggestions, supervision's reports and the FAQ gaps name categories by these)."""

from __future__ import annotations

# The IVR category codes and their Japanese labels (shared with the screen-pop composer).
CATEGORY_LABELS: dict[str, str] = {
    "koseki": "戸籍・住民票",
    "zei": "税",
    "hoken": "保険・年金",
    "gomi": "ごみ・リサイクル",
    "kosodate": "子育て",
    "other": "その他",
}

# IVR category code -> the FAQ's category values (category1 of the municipal FAQ) it covers.
DEFAULT_CATEGORY_MAP: dict[str, list[str]] = {
    "koseki": ["住民票・戸籍・印鑑証明", "暮らしに役立つ情報"],
    "zei": ["税金"],
    "hoken": ["保険・年金", "健康・医療", "健診・予防接種"],
    "gomi": ["ごみ・リサイクル", "環境衛生"],
    "kosodate": [
        "子どもの手当・助成",
        "保育",
        "妊娠・出産",
        "子育て・子ども家庭支援",
        "健診・予防接種",
        "学校・教育",
    ],
    "other": ["施設", "防災・防犯", "暮らしに関する相談", "区の紹介", "暮らしに役立つ情報"],
}

# Default topic words per IVR code: rank a category's entries when the caller has no recent topics.
DEFAULT_CATEGORY_TOPICS: dict[str, str] = {
    "koseki": "住民票 戸籍 印鑑登録 転入 転出 マイナンバー",
    "zei": "住民税 納税証明書 課税証明書 申告",
    "hoken": "国民健康保険 保険証 年金",
    "gomi": "ごみの出し方 粗大ごみ 分別 資源",
    "kosodate": "児童手当 保育園 入園 母子手帳 医療証",
    "other": "市役所 開庁時間 場所 電話番号",
}
